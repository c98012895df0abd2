/**
 * The fleet end to end (SPEC §7): a real server process, a real `service-vm-host` agent process and
 * real QEMU (the hand-written boot-sector guest, under TCG). A tenant admin issues a node:agent
 * token for the key `init` printed, the node enrolls and heartbeats, and a VM created through the
 * API runs on it, stops, starts, shows its console, and is deleted, with a ledger entry for each
 * step. On SQLite and PostgreSQL. test/e2e/fleet-failures.test.ts kills things.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUEST_LINE } from '../support/guest-image.js';
import { enrolledNode, GUEST_IMAGE, qemuProcessesOf, stopAgents, type AgentProcess, type FleetNode } from '../support/fleet-agent.js';
import { commandLine, eventually, processAlive } from '../support/qemu-guests.js';
import { api, readLedgerJson, startServer, type ServerProcess } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';
import { readCapacity } from '../../src/agent/capacity.js';
import { nodeKeyFile, readEnrollment } from '../../src/agent/state-dir.js';
import { readPrivateKey } from '../../src/cli/holder.js';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';

const TENANT = 'acme-fleet';

describe(`a VM runs on a real node agent under QEMU (${TEST_STORE})`, () => {
  let server: ServerProcess;
  let adminToken: string;
  let node: FleetNode;
  let agent: AgentProcess;
  let vmId: string;
  const asAdmin = (method: string, path: string, body?: unknown) => api(server.url, method, path, { token: adminToken, ...(body !== undefined ? { body } : {}) });

  /** Polls the VM until its state is `state`; the agent's output explains a timeout. */
  async function vmBecomes(state: string): Promise<Record<string, any>> {
    return eventually(`${vmId} ${state}`, async () => {
      const vm = await asAdmin('GET', `/v1/vms/${vmId}`);
      return vm.body?.state === state ? (vm.body as Record<string, any>) : undefined;
    }).catch((error: Error) => {
      throw new Error(`${error.message}\nagent:\n${agent.output()}\nserver:\n${server.output()}`);
    });
  }

  beforeAll(async () => {
    server = await startServer(undefined, {}, { args: ['--heartbeat-interval', '2'] });
    const tenant = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: TENANT, display_name: 'Acme fleet', api_rate_limit_rpm: 100_000 },
    });
    expect(tenant.status).toBe(201);
    const admin = await api(server.url, 'POST', `/v1/tenants/${TENANT}/tokens`, {
      token: server.adminToken,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(generateKeyPair().publicKey)), scope: 'service:tenant-admin', expires_in_seconds: 86400 },
    });
    expect(admin.status).toBe(201);
    adminToken = admin.body.token;
  });
  afterAll(async () => {
    stopAgents();
    await server.stop();
  });

  it("enrolls with a node:agent token the tenant admin issued for the key init printed, and is ready in the tenant's node list", async () => {
    node = await enrolledNode(server, TENANT, 'compute-01', adminToken);
    const list = await asAdmin('GET', '/v1/nodes');
    expect(list.body.items).toEqual([expect.objectContaining({ node_id: 'compute-01', tenant_id: TENANT, state: 'ready' })]);
    // The reply asks for the server's interval (serve --heartbeat-interval 2): a heartbeat as the node sends it.
    const enrollment = readEnrollment(node.stateDir);
    const beat = await api(server.url, 'POST', '/v1/nodes/compute-01/heartbeat', {
      token: enrollment.token,
      signWith: readPrivateKey(nodeKeyFile(node.stateDir)),
      body: { capacity: readCapacity(node.stateDir), vms: [] },
    });
    expect(beat.body).toMatchObject({ heartbeat_interval_s: 2, vms: [] });
    agent = node.run();
  });

  it('a VM created through the API is placed on the node and becomes running as QMP reports it, its QEMU named after it with exactly its vcpus and memory', async () => {
    const created = await asAdmin('POST', '/v1/vms', { name: 'web-1', vcpus: 1, memory_mb: 64, disk_gb: 1, image: GUEST_IMAGE });
    expect(created.status).toBe(201);
    vmId = created.body.vm_id;
    const running = await vmBecomes('running');
    expect(running).toMatchObject({ node_id: 'compute-01', desired_state: 'running' });
    const [pid] = qemuProcessesOf(vmId);
    expect(qemuProcessesOf(vmId)).toEqual([node.qemuPid(vmId)]);
    const argv = commandLine(pid!);
    expect(argv.slice(argv.indexOf('-smp'), argv.indexOf('-smp') + 2)).toEqual(['-smp', '1']);
    expect(argv.slice(argv.indexOf('-m'), argv.indexOf('-m') + 2)).toEqual(['-m', '64']);
    const detail = await asAdmin('GET', '/v1/nodes/compute-01');
    expect(detail.body.vms).toEqual([expect.objectContaining({ vm_id: vmId, state: 'running' })]);
    expect(detail.body.allocated).toEqual({ vms: 1, vcpus: 1, memory_mb: 64, disk_gb: 1 });
  });

  it("the guest's serial console is readable through GET /v1/vms/{id}/console", async () => {
    const text = await eventually('the guest line in the console', async () => {
      const console = await asAdmin('GET', `/v1/vms/${vmId}/console`);
      const data = Buffer.from(console.body.data as string, 'base64').toString();
      return data.includes(GUEST_LINE) ? data : undefined;
    });
    expect(text).toContain(GUEST_LINE);
  });

  it('stop makes it stopped (its QEMU ended), start makes it running again', async () => {
    const pid = node.qemuPid(vmId);
    expect((await asAdmin('POST', `/v1/vms/${vmId}/stop`)).status).toBe(200);
    await vmBecomes('stopped');
    expect(processAlive(pid)).toBe(false);
    expect(qemuProcessesOf(vmId)).toEqual([]);
    expect((await asAdmin('POST', `/v1/vms/${vmId}/start`)).status).toBe(200);
    await vmBecomes('running');
    expect(qemuProcessesOf(vmId)).toHaveLength(1);
  });

  it('delete answers 202 and completes when the node has ended QEMU and removed the VM directory: then the record is gone', async () => {
    const pid = node.qemuPid(vmId);
    const deleting = await asAdmin('DELETE', `/v1/vms/${vmId}`);
    expect(deleting.status).toBe(202);
    expect(deleting.body).toMatchObject({ state: 'deleting', desired_state: 'deleted' });
    await eventually('the VM record gone', async () => ((await asAdmin('GET', `/v1/vms/${vmId}`)).status === 404 ? true : undefined));
    expect(processAlive(pid)).toBe(false);
    expect(qemuProcessesOf(vmId)).toEqual([]);
    expect(existsSync(join(node.stateDir, 'vms', vmId))).toBe(false);
    expect((await asAdmin('GET', '/v1/nodes/compute-01')).body).toMatchObject({ state: 'ready', vms: [], allocated: { vms: 0 } });
  });

  it('the ledger holds an entry for each step: enrolled, created, every state change, deleted', () => {
    const entries = readLedgerJson(server.dataDir).filter((e) => e.event_type.startsWith('NODE_') || e.event_type.startsWith('VM_'));
    expect(entries[0]).toMatchObject({ event_type: 'NODE_ENROLLED', tenant_id: TENANT, subject_ids: { node_id: 'compute-01' } });
    const ofVm = entries.filter((e) => e.subject_ids?.vm_id === vmId);
    const steps = ofVm.map((e) => (e.event_type === 'VM_STATE_CHANGED' ? `${e.data.state.from}>${e.data.state.to}` : e.event_type));
    // In this order, with others between (the node may report `starting` for a moment, and stop and
    // start first change the desired state alone).
    const expected = ['VM_CREATED', 'pending>scheduled', 'running>stopped', 'stopped>running', 'running>deleting', 'VM_DELETED'];
    let at = 0;
    for (const step of steps) if (step === expected[at]) at++;
    expect({ steps, matched: expected.slice(0, at) }).toEqual({ steps, matched: expected });
    expect(steps[0]).toBe('VM_CREATED');
    expect(steps.at(-1)).toBe('VM_DELETED');
    expect(entries.filter((e) => e.event_type.startsWith('NODE_')).map((e) => e.event_type)).toEqual(['NODE_ENROLLED']);
  });
});
