/**
 * Heartbeats answered from memory (docs/design/fleet.md, "What a heartbeat writes"): a heartbeat
 * that reports what its node was last told, while its tenant's vm_generation is unchanged, runs no
 * statement at all; any change to the node or its VMs moves the generation, so the next heartbeat
 * reads the store and carries the change. The node and VM are set up through the real app; the
 * heartbeats under test call the control function over the same store, wrapped so that every
 * statement it runs is counted (BEGIN and COMMIT included).
 */
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock, isoTime, makeIdSource } from '../../src/clock.js';
import { HeartbeatRecorder } from '../../src/control/heartbeats.js';
import { HEARTBEAT_INTERVAL_S, receiveHeartbeat, storedHeartbeatMs, type ObservedVm } from '../../src/control/nodes.js';
import { scheduleOnce } from '../../src/control/scheduler.js';
import { findNode } from '../../src/store/nodes.js';
import type { Store } from '../../src/store/store.js';
import { findTenant } from '../../src/store/tenants.js';
import { startHarness, type Harness } from '../support/harness.js';

const TENANT = 'answer-fleet';
const CAPACITY = { cpus: 4, memory_mb_total: 8192, memory_mb_available: 6000, disk_gb_available: 100, kvm: true, load1: 0.1 };

describe('heartbeats answered from memory', () => {
  let h: Harness;
  let clock: ManualClock;
  let admin: string;
  let statements = 0;
  let counted: Store;

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    h = await startHarness({ clock });
    await h.createTenant(TENANT);
    admin = (await h.issueToken(TENANT, 'service:tenant-admin')).token;
    const counter: KyselyPlugin = {
      transformQuery: (args) => {
        statements += 1;
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    counted = { ...h.store, db: h.store.db.withPlugin(counter) };
  });
  afterAll(async () => {
    await h.close();
  });

  /** A node with one VM placed on it, which the node reports running (through the app). */
  async function nodeRunningOneVm(nodeId: string) {
    const agent = await h.issueToken(TENANT, 'node:agent');
    const beat = (vms: unknown[]) =>
      h.request('POST', `/v1/nodes/${nodeId}/heartbeat`, { token: agent.token, signWith: agent.keys.privateKey, body: { capacity: CAPACITY, vms } });
    expect(
      (await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: nodeId, capacity: CAPACITY } })).statusCode,
    ).toBe(201);
    const created = await h.request('POST', '/v1/vms', { token: admin, body: { disk_gb: 1, memory_mb: 512, node_id: nodeId } });
    expect(created.statusCode, created.body).toBe(201);
    const vmId = created.json<{ vm_id: string }>().vm_id;
    await scheduleOnce({ store: h.store, clock, ids: makeIdSource(clock) }, { cpuOvercommit: 4 });
    expect((await beat([])).statusCode).toBe(200);
    expect((await beat([{ vm_id: vmId, state: 'running' }])).statusCode).toBe(200);
    const node = await findNode(h.store.db, TENANT, nodeId);
    return { vmId, publicKey: node!.public_key, tokenId: agent.tokenId };
  }

  /** One heartbeat as the route makes it, with the generation auth would read on its request; returns it and the statements it ran. */
  async function heartbeatCounted(
    recorder: HeartbeatRecorder,
    nodeId: string,
    node: { publicKey: string; tokenId: string },
    observed: ObservedVm[],
    capacity = CAPACITY,
  ) {
    const vmGeneration = (await findTenant(h.store.db, TENANT))!.vm_generation;
    statements = 0;
    const reply = await receiveHeartbeat(
      { store: counted, clock, ids: makeIdSource(clock), heartbeats: recorder },
      { actor: { token_id: node.tokenId, subject: node.publicKey, scope: ['node:agent'] }, requestId: null },
      { tenantId: TENANT, publicKey: node.publicKey, tokenId: node.tokenId, vmGeneration },
      nodeId,
      capacity,
      observed,
    );
    return { reply, statements };
  }

  it('answers a heartbeat that reports what its node was told without a single statement, and still holds its liveness time for the flush', async () => {
    const node = await nodeRunningOneVm('quiet-answer');
    const running: ObservedVm[] = [{ vm_id: node.vmId, state: 'running' }];
    const recorder = new HeartbeatRecorder();

    const first = await heartbeatCounted(recorder, 'quiet-answer', node, running);
    expect(first.statements).toBeGreaterThan(0); // nothing remembered yet: read from the store
    const second = await heartbeatCounted(recorder, 'quiet-answer', node, running);
    expect(second.statements).toBe(0);
    expect(second.reply).toEqual(first.reply);

    // Old enough that its time must be stored: held in memory, still no statement.
    clock.advance(storedHeartbeatMs(HEARTBEAT_INTERVAL_S));
    const stale = await heartbeatCounted(recorder, 'quiet-answer', node, running);
    expect(stale.statements).toBe(0);
    expect(stale.reply.node.last_heartbeat_at).toBe(isoTime(clock.now()));
    await recorder.flush(h.store);
    expect((await findNode(h.store.db, TENANT, 'quiet-answer'))!.last_heartbeat_at).toBe(isoTime(clock.now()));
  });

  it('reads the store when the report or the capacity differs from what the node was told', async () => {
    const node = await nodeRunningOneVm('changed-report');
    const recorder = new HeartbeatRecorder();
    await heartbeatCounted(recorder, 'changed-report', node, [{ vm_id: node.vmId, state: 'running' }]);
    const stopped = await heartbeatCounted(recorder, 'changed-report', node, [{ vm_id: node.vmId, state: 'stopped' }]);
    expect(stopped.statements).toBeGreaterThan(0);
    expect((await h.request('GET', `/v1/vms/${node.vmId}`, { token: admin })).json()).toMatchObject({ state: 'stopped' });
    // Another VM's id, the same VM twice, or no report at all: each goes to the store, which decides.
    for (const observed of [
      [],
      [{ vm_id: 'vm-elsewhere', state: 'running' }],
      [
        { vm_id: node.vmId, state: 'stopped' },
        { vm_id: node.vmId, state: 'stopped' },
      ],
    ] as ObservedVm[][]) {
      await heartbeatCounted(recorder, 'changed-report', node, [{ vm_id: node.vmId, state: 'stopped' }]);
      await heartbeatCounted(recorder, 'changed-report', node, observed).catch(() => undefined); // the last two are refused
      expect(statements, JSON.stringify(observed)).toBeGreaterThan(0);
    }
    await heartbeatCounted(recorder, 'changed-report', node, [{ vm_id: node.vmId, state: 'stopped' }]);
    for (const capacity of [
      { ...CAPACITY, cpus: 8 },
      { ...CAPACITY, memory_mb_available: 1000 },
    ]) {
      statements = 0;
      await heartbeatCounted(recorder, 'changed-report', node, [{ vm_id: node.vmId, state: 'stopped' }], capacity);
      expect(statements, JSON.stringify(capacity)).toBeGreaterThan(0);
    }
  });

  it('carries a VM change made after the answer was remembered on the next heartbeat', async () => {
    const node = await nodeRunningOneVm('told-again');
    const running: ObservedVm[] = [{ vm_id: node.vmId, state: 'running' }];
    const recorder = new HeartbeatRecorder();
    await heartbeatCounted(recorder, 'told-again', node, running);
    expect((await heartbeatCounted(recorder, 'told-again', node, running)).statements).toBe(0);

    const stop = await h.request('POST', `/v1/vms/${node.vmId}/stop`, { token: admin });
    expect(stop.statusCode, stop.body).toBe(200);
    const next = await heartbeatCounted(recorder, 'told-again', node, running);
    expect(next.statements).toBeGreaterThan(0);
    expect(next.reply.vms).toEqual([expect.objectContaining({ vm_id: node.vmId, desired_state: 'stopped' })]);
  });
});
