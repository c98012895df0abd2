/**
 * The fleet when things die (SPEC §7), end to end: a real server process (asking for a heartbeat
 * every 2 s), a real `service-vm-host` agent process and real QEMU guests under TCG. The agent is
 * killed with SIGKILL while three VMs run and started again; a QEMU process is killed; the agent is
 * stopped long enough for its node to become unreachable, and started again. On SQLite and
 * PostgreSQL.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrolledNode, GUEST_IMAGE, qemuProcessesOf, stopAgents, type AgentProcess, type FleetNode } from '../support/fleet-agent.js';
import { eventually, processAlive } from '../support/qemu-guests.js';
import { api, readLedgerJson, startServer, type ServerProcess } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

const TENANT = 'acme-fleet';
const INTERVAL_S = 2;

describe(`VMs on a real node agent survive its crash, report a killed QEMU, and wait out its absence (${TEST_STORE})`, () => {
  let server: ServerProcess;
  let node: FleetNode;
  let agent: AgentProcess;
  const vmIds: string[] = [];
  const asAdmin = (method: string, path: string) => api(server.url, method, path, { token: server.adminToken });

  async function stateOf(vmId: string): Promise<Record<string, any>> {
    return (await asAdmin('GET', `/v1/vms/${vmId}?tenant_id=${TENANT}`)).body as Record<string, any>;
  }

  /** Polls until every VM named has its state; the agent's and server's output explain a timeout. */
  async function vmsBecome(states: Record<string, string>, timeoutMs?: number): Promise<void> {
    await eventually(
      JSON.stringify(states),
      async () => {
        for (const [vmId, state] of Object.entries(states)) if ((await stateOf(vmId)).state !== state) return undefined;
        return true;
      },
      timeoutMs,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nagent:\n${agent.output()}\nserver:\n${server.output()}`);
    });
  }

  function vmStateChanges(vmId: string): number {
    return readLedgerJson(server.dataDir, '--event-type', 'VM_STATE_CHANGED').filter((e) => e.subject_ids?.vm_id === vmId).length;
  }

  beforeAll(async () => {
    server = await startServer(undefined, {}, { args: ['--heartbeat-interval', String(INTERVAL_S)] });
    const tenant = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: TENANT, display_name: 'Acme fleet', api_rate_limit_rpm: 100_000 },
    });
    expect(tenant.status).toBe(201);
    node = await enrolledNode(server, TENANT, 'compute-01');
    agent = node.run();
    for (const name of ['web-1', 'web-2', 'web-3']) {
      const created = await api(server.url, 'POST', `/v1/vms?tenant_id=${TENANT}`, {
        token: server.adminToken,
        body: { name, vcpus: 1, memory_mb: 64, disk_gb: 1, image: GUEST_IMAGE },
      });
      expect(created.status).toBe(201);
      vmIds.push(created.body.vm_id);
    }
    await vmsBecome(Object.fromEntries(vmIds.map((id) => [id, 'running'])));
  });
  afterAll(async () => {
    stopAgents();
    await server.stop();
  });

  it('after the agent is killed with SIGKILL and started again, the same three QEMU processes run, none twice, none restarted', async () => {
    const pids = vmIds.map((id) => node.qemuPid(id));
    const changes = vmIds.map(vmStateChanges);
    agent.child.kill('SIGKILL');
    await agent.exited();
    for (const pid of pids) expect(processAlive(pid)).toBe(true);

    agent = node.run();
    // The new agent's first heartbeat is answered (and reconciled), then the server stores a later one.
    await eventually('the new agent heartbeating', () => (agent.output().includes('first heartbeat answered') ? true : undefined));
    const answered = new Date().toISOString();
    await eventually('a later heartbeat stored', async () =>
      (await asAdmin('GET', `/v1/nodes/compute-01?tenant_id=${TENANT}`)).body.last_heartbeat_at > answered ? true : undefined,
    );

    expect(vmIds.map((id) => qemuProcessesOf(id))).toEqual(pids.map((pid) => [pid]));
    expect(vmIds.map((id) => node.qemuPid(id))).toEqual(pids);
    for (const id of vmIds) expect((await stateOf(id)).state).toBe('running');
    // No VM left `running` meanwhile: the ledger has no new state change for any of them.
    expect(vmIds.map(vmStateChanges)).toEqual(changes);
  });

  it('a QEMU process killed with SIGKILL makes its VM failed, with a reason naming the signal; the others keep running', async () => {
    const [victim, ...others] = vmIds;
    process.kill(node.qemuPid(victim!), 'SIGKILL');
    await vmsBecome({ [victim!]: 'failed' });
    expect((await stateOf(victim!)).reason).toMatch(/SIGKILL/);
    expect(qemuProcessesOf(victim!)).toEqual([]);
    for (const id of others) expect((await stateOf(id)).state).toBe('running');
  });

  it('with the agent stopped, the node becomes unreachable after 3 silent intervals and its VMs unknown; back, it is ready and they are as they were', async () => {
    const [failed, ...running] = vmIds;
    agent.child.kill('SIGTERM');
    expect(await agent.exited()).toBe(0);

    await eventually(
      'the node unreachable',
      async () => ((await asAdmin('GET', `/v1/nodes/compute-01?tenant_id=${TENANT}`)).body.state === 'unreachable' ? true : undefined),
      30_000,
    );
    await vmsBecome(Object.fromEntries(vmIds.map((id) => [id, 'unknown'])));
    const [marked] = readLedgerJson(server.dataDir, '--event-type', 'NODE_STATE_CHANGED');
    expect(marked).toMatchObject({ actor: { subject: 'control-plane' }, data: { state: { from: 'ready', to: 'unreachable' } } });
    // The sweep acted on a stored heartbeat at least 3 intervals old.
    expect(Number(/no heartbeat for (\d+) s/.exec(marked!.data.reason)?.[1])).toBeGreaterThanOrEqual(3 * INTERVAL_S);
    // The VMs ran on meanwhile: the node being silent is not the VMs being gone.
    for (const id of running) expect(qemuProcessesOf(id)).toHaveLength(1);

    agent = node.run();
    await eventually('the node ready again', async () => ((await asAdmin('GET', `/v1/nodes/compute-01?tenant_id=${TENANT}`)).body.state === 'ready' ? true : undefined));
    await vmsBecome({ [failed!]: 'failed', ...Object.fromEntries(running.map((id) => [id, 'running'])) });
    expect(readLedgerJson(server.dataDir, '--event-type', 'NODE_STATE_CHANGED').map((e) => e.data.state.to)).toEqual(['unreachable', 'ready']);
  });

  it('after its node is removed, the agent says the server has no such node and leaves its VMs; enrolled again, it ends the VMs the server no longer places on it', async () => {
    const running = vmIds.slice(1);
    const pids = running.map((id) => node.qemuPid(id));
    expect((await asAdmin('DELETE', `/v1/nodes/compute-01?tenant_id=${TENANT}`)).status).toBe(204);
    for (const id of vmIds) expect(await stateOf(id)).toMatchObject({ state: 'failed', reason: 'node compute-01 was removed', node_id: null });
    await eventually('the agent saying the node is unknown', () => (agent.output().includes('the server has no node compute-01') ? true : undefined));
    for (const pid of pids) expect(processAlive(pid)).toBe(true);

    // Enrolled again with the same key: the server knows the node, but none of the VMs it still holds.
    agent.child.kill('SIGTERM');
    expect(await agent.exited()).toBe(0);
    await node.enroll();
    agent = node.run();
    await eventually('the old VMs ended on the node', () =>
      vmIds.every((id) => qemuProcessesOf(id).length === 0 && !existsSync(join(node.stateDir, 'vms', id))) ? true : undefined,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nagent:\n${agent.output()}`);
    });
    for (const pid of pids) expect(processAlive(pid)).toBe(false);
    expect(agent.output()).toContain(`the server does not place VM ${running[0]} on this node; ending it here`);
    // Its heartbeats are answered again.
    const answered = new Date().toISOString();
    await eventually('a heartbeat stored', async () =>
      (await asAdmin('GET', `/v1/nodes/compute-01?tenant_id=${TENANT}`)).body.last_heartbeat_at > answered ? true : undefined,
    );
  });

  it("with its token revoked, the agent says the server refuses the node's token and goes on trying", async () => {
    expect((await asAdmin('DELETE', `/v1/tenants/${TENANT}/tokens/${node.tokenId}`)).status).toBe(200);
    await eventually('the agent saying its token is refused', () => (agent.output().includes("the server refuses this node's token") ? true : undefined)).catch(
      (error: Error) => {
        throw new Error(`${error.message}\nagent:\n${agent.output()}`);
      },
    );
    expect(agent.child.exitCode).toBeNull();
  });
});
