/**
 * The server side of the fleet (SPEC §6–7, docs/design/fleet.md), through the real app: the test
 * plays the node agent with a real node key, a real node:agent token issued by the tenant admin, and
 * RFC 9421-signed requests, on whichever store the run uses. The clock is the harness's, advanced by
 * hand for the unreachable sweep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { HEARTBEAT_INTERVAL_S, storedHeartbeatMs, sweepSilentNodes } from '../../src/control/nodes.js';
import { scheduleOnce } from '../../src/control/scheduler.js';
import type { KeyPair } from '../../src/tokens/keys.js';
import { generateKeyPair } from '../../src/tokens/keys.js';
import { startHarness, type Harness } from '../support/harness.js';
import { expectProblem, snapshotState } from '../api/expectations.js';

const A = 'fleet-a';
const B = 'fleet-b';
const CAPACITY = { cpus: 4, memory_mb_total: 8192, memory_mb_available: 6000, disk_gb_available: 100, kvm: true, load1: 0.1 };

interface Agent {
  token: string;
  keys: KeyPair;
  nodeId: string;
}

interface Desired {
  vm_id: string;
  desired_state: string;
  vcpus: number;
  memory_mb: number;
}

describe('fleet nodes, heartbeats and the scheduler', () => {
  let h: Harness;
  let clock: ManualClock;
  let adminA: string;
  let adminB: string;
  const deps = () => ({ store: h.store, clock: h.clock, ids: (p: string) => `${p}-unused` });

  async function agentFor(tenant: string, nodeId: string, capacity = CAPACITY): Promise<Agent> {
    const issued = await h.issueToken(tenant, 'node:agent');
    const agent = { token: issued.token, keys: issued.keys, nodeId };
    const res = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: nodeId, capacity } });
    expect(res.statusCode, res.body).toBe(201);
    return agent;
  }

  function heartbeat(agent: Agent, vms: unknown[] = [], capacity = CAPACITY, nodeId = agent.nodeId) {
    return h.request('POST', `/v1/nodes/${nodeId}/heartbeat`, { token: agent.token, signWith: agent.keys.privateKey, body: { capacity, vms } });
  }

  async function desiredOf(agent: Agent, vms: unknown[] = []): Promise<Desired[]> {
    const res = await heartbeat(agent, vms);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ vms: Desired[] }>().vms;
  }

  async function createVm(token: string, body: Record<string, unknown> = {}): Promise<string> {
    const res = await h.request('POST', '/v1/vms', { token, body: { disk_gb: 1, memory_mb: 512, ...body } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ vm_id: string }>().vm_id;
  }

  async function vm(token: string, vmId: string) {
    const res = await h.request('GET', `/v1/vms/${vmId}`, { token });
    return { status: res.statusCode, ...res.json<{ state: string; desired_state: string; node_id: string | null; reason: string | null }>() };
  }

  async function events(type: string, filter: Record<string, string> = {}) {
    return (await h.ledgerLines({ limit: 100_000, eventType: type, ...filter } as never)) as Array<{
      data: Record<string, unknown>;
      subject_ids: Record<string, string>;
    }>;
  }

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    h = await startHarness({ clock });
    await h.createTenant(A, { max_vms: 50, storage_quota_gb: 1000 });
    await h.createTenant(B, { max_vms: 50, storage_quota_gb: 1000 });
    adminA = (await h.issueToken(A, 'service:tenant-admin')).token;
    adminB = (await h.issueToken(B, 'service:tenant-admin')).token;
  });
  afterAll(async () => {
    await h.close();
  });

  it('enrolls a node once per node id and once per key, with NODE_ENROLLED', async () => {
    const agent = await agentFor(A, 'enroll-once');
    const again = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: 'enroll-other', capacity: CAPACITY } });
    expect(expectProblem(again, 409).detail).toMatch(/already enrolled node enroll-once/);
    const other = await h.issueToken(A, 'node:agent');
    const sameId = await h.request('POST', '/v1/nodes', { token: other.token, signWith: other.keys.privateKey, body: { node_id: 'enroll-once', capacity: CAPACITY } });
    expectProblem(sameId, 409);
    // Node ids are per tenant: B may have its own enroll-once.
    await agentFor(B, 'enroll-once');
    const enrolled = await events('NODE_ENROLLED', { nodeId: 'enroll-once' });
    expect(enrolled.map((e) => (e as unknown as { tenant_id: string }).tenant_id).sort()).toEqual([A, B]);
  });

  it('places a pending VM on a ready node, carries start, stop and delete to it, and removes it when the node reports it gone', async () => {
    const agent = await agentFor(A, 'life-node');
    const vmId = await createVm(adminA, { node_id: 'life-node' });
    expect((await vm(adminA, vmId)).state).toBe('pending');
    await scheduleOnce(deps(), { cpuOvercommit: 4 });
    expect(await vm(adminA, vmId)).toMatchObject({ state: 'scheduled', node_id: 'life-node', reason: null });

    expect(await desiredOf(agent)).toEqual([expect.objectContaining({ vm_id: vmId, desired_state: 'running', vcpus: 1, memory_mb: 512 })]);
    await desiredOf(agent, [{ vm_id: vmId, state: 'running' }]);
    expect((await vm(adminA, vmId)).state).toBe('running');

    expect((await h.request('POST', `/v1/vms/${vmId}/stop`, { token: adminA })).statusCode).toBe(200);
    expect((await desiredOf(agent, [{ vm_id: vmId, state: 'running' }]))[0]!.desired_state).toBe('stopped');
    await desiredOf(agent, [{ vm_id: vmId, state: 'stopped' }]);
    expect((await vm(adminA, vmId)).state).toBe('stopped');

    const deleted = await h.request('DELETE', `/v1/vms/${vmId}`, { token: adminA });
    expect(deleted.statusCode).toBe(202);
    expect(deleted.json()).toMatchObject({ state: 'deleting', desired_state: 'deleted' });
    expect((await desiredOf(agent, [{ vm_id: vmId, state: 'stopped' }]))[0]!.desired_state).toBe('deleted');
    expect((await vm(adminA, vmId)).state).toBe('deleting');
    // The node destroyed it and no longer reports it: the record goes.
    expect(await desiredOf(agent, [])).toEqual([]);
    expect((await vm(adminA, vmId)).status).toBe(404);

    // State changes (the stop request's entry changes only the desired state).
    const changes = (await events('VM_STATE_CHANGED', { vmId })).map((e) => e.data.state).filter((c): c is { from: string; to: string } => typeof c === 'object');
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['pending->scheduled', 'scheduled->running', 'running->stopped', 'stopped->deleting']);
    expect(await events('VM_DELETED', { vmId })).toHaveLength(1);
  });

  it('writes no ledger entry and no node row for a heartbeat where nothing changed', async () => {
    const agent = await agentFor(A, 'quiet-node');
    await desiredOf(agent);
    const before = await snapshotState(h);
    clock.advance(storedHeartbeatMs(HEARTBEAT_INTERVAL_S) - 1000);
    await desiredOf(agent, []);
    expect((await heartbeat(agent, [], { ...CAPACITY, memory_mb_available: CAPACITY.memory_mb_available - 100, load1: 3 })).statusCode).toBe(200);
    expect(await snapshotState(h)).toEqual(before);
    // A real capacity change is written, still without a ledger entry.
    await heartbeat(agent, [], { ...CAPACITY, cpus: 8 });
    const after = await snapshotState(h);
    expect(after.ledgerEntries).toBe(before.ledgerEntries);
    expect(after.nodes).not.toEqual(before.nodes);
  });

  it('marks a node silent for 3 intervals unreachable and its VMs unknown, and ready again on its next heartbeat', async () => {
    const agent = await agentFor(A, 'sleepy-node');
    const vmId = await createVm(adminA, { node_id: 'sleepy-node' });
    await scheduleOnce(deps(), { cpuOvercommit: 4 });
    await desiredOf(agent, [{ vm_id: vmId, state: 'running' }]);
    const nodeState = async () => (await h.request('GET', '/v1/nodes/sleepy-node', { token: adminA })).json<{ state: string }>().state;
    // 3 intervals plus the flush period (a quiet heartbeat's time is written by the next flush).
    clock.advance(31_000);
    await sweepSilentNodes(deps());
    expect(await nodeState()).toBe('ready');
    clock.advance(1_000);
    await sweepSilentNodes(deps());
    expect(await nodeState()).toBe('unreachable');
    expect((await vm(adminA, vmId)).state).toBe('unknown');
    const down = await events('NODE_STATE_CHANGED', { nodeId: 'sleepy-node' });
    expect(down.map((e) => e.data.state)).toEqual([{ from: 'ready', to: 'unreachable' }]);

    await desiredOf(agent, [{ vm_id: vmId, state: 'running' }]);
    expect((await h.request('GET', '/v1/nodes/sleepy-node', { token: adminA })).json()).toMatchObject({ state: 'ready' });
    expect((await vm(adminA, vmId)).state).toBe('running');
    expect((await events('NODE_STATE_CHANGED', { nodeId: 'sleepy-node' })).map((e) => e.data.state)).toEqual([
      { from: 'ready', to: 'unreachable' },
      { from: 'unreachable', to: 'ready' },
    ]);
  });

  it('places a pending VM once a heartbeat makes its node ready again', async () => {
    const agent = await agentFor(A, 'late-node');
    clock.advance(32_000);
    await sweepSilentNodes(deps());
    const vmId = await createVm(adminA, { node_id: 'late-node' });
    await scheduleOnce(deps(), { cpuOvercommit: 4 });
    expect(await vm(adminA, vmId)).toMatchObject({ state: 'pending', reason: expect.stringMatching(/not ready/) });
    await desiredOf(agent);
    await scheduleOnce(deps(), { cpuOvercommit: 4 });
    expect(await vm(adminA, vmId)).toMatchObject({ state: 'scheduled', node_id: 'late-node' });
  });

  it("never places a tenant's VM on another tenant's node, nor lets it ask for one", async () => {
    const agentA = await agentFor(A, 'only-a');
    const vmB = await createVm(adminB);
    await scheduleOnce(deps(), { cpuOvercommit: 4 });
    const b = await vm(adminB, vmB);
    expect(b.state).toBe('pending');
    expect(b.reason).toMatch(/no ready fleet node/);
    expect((await desiredOf(agentA)).map((d) => d.vm_id)).not.toContain(vmB);
    const asked = await h.request('POST', '/v1/vms', { token: adminB, body: { disk_gb: 1, node_id: 'only-a' } });
    expectProblem(asked, 404);
  });

  it('refuses a node reporting or touching a VM not placed on it, and changes nothing', async () => {
    const agentA = await agentFor(A, 'honest-a');
    const otherA = await agentFor(A, 'honest-b');
    const vmOnOther = await createVm(adminA, { node_id: 'honest-b' });
    const vmOfB = await createVm(adminB);
    await scheduleOnce(deps(), { cpuOvercommit: 4 });
    await desiredOf(otherA, [{ vm_id: vmOnOther, state: 'running' }]);
    const before = await snapshotState(h);
    for (const vmId of [vmOnOther, vmOfB, 'vm-00000000000000000000000000']) {
      const refused = await heartbeat(agentA, [{ vm_id: vmId, state: 'failed', reason: 'forged' }]);
      expectProblem(refused, 404);
      // The agent ends the VM the problem names (docs/design/agent.md).
      expect(refused.json()).toMatchObject({ vm_id: vmId });
      const upload = await h.request('PUT', `/v1/nodes/honest-a/vms/${vmId}/console`, {
        token: agentA.token,
        signWith: agentA.keys.privateKey,
        body: { data: Buffer.from('forged').toString('base64') },
      });
      expectProblem(upload, 404);
    }
    // Another node's id, with this node's key: refused as the wrong key.
    expectProblem(await heartbeat(agentA, [], CAPACITY, 'honest-b'), 403);
    expect(await snapshotState(h)).toEqual(before);
  });

  it('refuses a copied node token without the node key', async () => {
    const agent = await agentFor(A, 'copied-node');
    const thief = generateKeyPair();
    const before = await snapshotState(h);
    const stolen = await heartbeat({ ...agent, keys: thief });
    expect(expectProblem(stolen, 401).signature_error).toBeDefined();
    const unsigned = await h.request('POST', '/v1/nodes/copied-node/heartbeat', { token: agent.token, body: { capacity: CAPACITY, vms: [] } });
    expectProblem(unsigned, 401);
    expect(await snapshotState(h)).toEqual(before);
  });

  it('keeps the last 64 KiB of a console for the tenant to read', async () => {
    const agent = await agentFor(A, 'console-node');
    const vmId = await createVm(adminA, { node_id: 'console-node' });
    await scheduleOnce(deps(), { cpuOvercommit: 4 });
    const text = Buffer.alloc(64 * 1024, 'x');
    text.write('login: ', text.length - 7);
    const up = await h.request('PUT', `/v1/nodes/console-node/vms/${vmId}/console`, {
      token: agent.token,
      signWith: agent.keys.privateKey,
      body: { data: text.toString('base64') },
    });
    expect(up.statusCode, up.body).toBe(204);
    const read = await h.request('GET', `/v1/vms/${vmId}/console`, { token: adminA });
    expect(read.statusCode).toBe(200);
    const body = read.json<{ data: string; bytes: number }>();
    expect(body.bytes).toBe(64 * 1024);
    expect(Buffer.from(body.data, 'base64').toString().endsWith('login: ')).toBe(true);
    expectProblem(await h.request('GET', `/v1/vms/${vmId}/console`, { token: adminB }), 404);
  });

  it('refuses to delete a tenant that still has nodes unless cascading, which removes them', async () => {
    await h.createTenant('fleet-gone');
    await agentFor('fleet-gone', 'orphan-node');
    expectProblem(await h.request('DELETE', '/v1/tenants/fleet-gone', { token: h.adminToken }), 409);
    expect((await h.request('DELETE', '/v1/tenants/fleet-gone?cascade=true', { token: h.adminToken })).statusCode).toBe(204);
    expect(await h.store.db.selectFrom('nodes').selectAll().where('tenant_id', '=', 'fleet-gone').execute()).toEqual([]);
    expect(await events('NODE_REMOVED', { nodeId: 'orphan-node' })).toHaveLength(1);
  });

  it('fails the VMs of a removed node with a reason, and records NODE_REMOVED', async () => {
    const agent = await agentFor(A, 'doomed-node');
    const running = await createVm(adminA, { node_id: 'doomed-node' });
    await scheduleOnce(deps(), { cpuOvercommit: 4 });
    await desiredOf(agent, [{ vm_id: running, state: 'running' }]);
    const removed = await h.request('DELETE', '/v1/nodes/doomed-node', { token: adminA });
    expect(removed.statusCode, removed.body).toBe(204);
    expect(await vm(adminA, running)).toMatchObject({ state: 'failed', node_id: null, reason: 'node doomed-node was removed' });
    expect(await events('NODE_REMOVED', { nodeId: 'doomed-node' })).toHaveLength(1);
    expectProblem(await heartbeat(agent), 404);
    // A failed VM no longer on a node is deleted at once.
    expect((await h.request('DELETE', `/v1/vms/${running}`, { token: adminA })).statusCode).toBe(204);
  });
});
