/**
 * Heartbeats and the unreachable sweep across replicas (SPEC §1, §7; docs/design/fleet.md): a
 * heartbeat received by replica B is in the shared store, so the sweep the leader (A) runs does not
 * call the node unreachable. Two apps over two connections to the same store (the run's SQLite file
 * or PostgreSQL database), sharing one hand-moved clock.
 */
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import type { TypedApp } from '../../src/api/deps.js';
import { ManualClock, isoTime, makeIdSource } from '../../src/clock.js';
import { openWritableStore } from '../../src/cli/common.js';
import { rememberedDatabaseUrl } from '../../src/config/data-dir.js';
import { sweepSilentNodes } from '../../src/control/nodes.js';
import { scheduleOnce } from '../../src/control/scheduler.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import type { Store } from '../../src/store/store.js';
import { startHarness, type Harness } from '../support/harness.js';

const TENANT = 'replica-fleet';
const CAPACITY = { cpus: 2, memory_mb_total: 4096, memory_mb_available: 3000, disk_gb_available: 50, kvm: false, load1: 0 };

describe('heartbeats across replicas', () => {
  let h: Harness;
  let clock: ManualClock;
  let storeB: Store;
  let appB: TypedApp;

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    h = await startHarness({ clock });
    storeB = await openWritableStore(h.dataDir, rememberedDatabaseUrl(h.dataDir));
    appB = await buildApp({ store: storeB, keyring: h.keyring, clock, ids: makeIdSource(clock) });
    await h.createTenant(TENANT);
  });
  afterAll(async () => {
    await appB.close();
    await storeB.close();
    await h.close();
  });

  function heartbeatOn(app: TypedApp, agent: { token: string; keys: { privateKey: KeyObject } }, nodeId: string, vms: unknown[] = []) {
    const url = `/v1/nodes/${nodeId}/heartbeat`;
    const payload = JSON.stringify({ capacity: CAPACITY, vms });
    const headers = {
      authorization: `Bearer ${agent.token}`,
      'content-type': 'application/json',
      ...signRequest({ method: 'POST', ...splitTarget(url), headers: {}, body: Buffer.from(payload) }, { privateKey: agent.keys.privateKey, clock }),
    };
    return app.inject({ method: 'POST', url, headers, payload });
  }

  it('a heartbeat through replica B keeps the node ready in the sweep on leader A', async () => {
    const agent = await h.issueToken(TENANT, 'node:agent');
    const enrolled = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: 'roaming', capacity: CAPACITY } });
    expect(enrolled.statusCode, enrolled.body).toBe(201);

    clock.advance(20_000);
    const beat = await heartbeatOn(appB, agent, 'roaming');
    expect(beat.statusCode, beat.body).toBe(200);
    // B holds the quiet heartbeat's time and its flusher writes it within a second.
    const heardAt = isoTime(clock.now());
    await expect
      .poll(
        async () => (await h.request('GET', `/v1/nodes/roaming?tenant_id=${TENANT}`, { token: h.adminToken })).json<{ last_heartbeat_at: string }>().last_heartbeat_at,
        {
          timeout: 2_000,
        },
      )
      .toBe(heardAt);

    // 35 s after enrolment, 15 s after the heartbeat B received.
    clock.advance(15_000);
    await sweepSilentNodes({ store: h.store, clock, ids: makeIdSource(clock) });
    const node = await h.request('GET', `/v1/nodes/roaming?tenant_id=${TENANT}`, { token: h.adminToken });
    expect(node.json()).toMatchObject({ state: 'ready' });

    // And silence after it is noticed by A: 3 intervals and the flush period (1 s) after B's heartbeat, and a second more.
    clock.advance(17_000);
    await sweepSilentNodes({ store: h.store, clock, ids: makeIdSource(clock) });
    expect((await h.request('GET', `/v1/nodes/roaming?tenant_id=${TENANT}`, { token: h.adminToken })).json()).toMatchObject({ state: 'unreachable' });
  });

  it('a change made through replica A reaches a node that heartbeats to replica B, which answered it from memory before', async () => {
    const agent = await h.issueToken(TENANT, 'node:agent');
    const enrolled = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: 'told-by-b', capacity: CAPACITY } });
    expect(enrolled.statusCode, enrolled.body).toBe(201);
    const desiredOnB = async (vms: unknown[] = []) => {
      const beat = await heartbeatOn(appB, agent, 'told-by-b', vms);
      expect(beat.statusCode, beat.body).toBe(200);
      return beat.json<{ node: { state: string }; vms: Array<{ vm_id: string; desired_state: string }> }>();
    };
    expect((await desiredOnB()).vms).toEqual([]);
    expect((await desiredOnB()).vms).toEqual([]); // B answers this one from memory

    const admin = (await h.issueToken(TENANT, 'service:tenant-admin')).token;
    const created = await h.request('POST', '/v1/vms', { token: admin, body: { disk_gb: 1, memory_mb: 512, node_id: 'told-by-b' } });
    expect(created.statusCode, created.body).toBe(201);
    const vmId = created.json<{ vm_id: string }>().vm_id;
    await scheduleOnce({ store: h.store, clock, ids: makeIdSource(clock) }, { cpuOvercommit: 4 });
    expect((await desiredOnB()).vms).toEqual([expect.objectContaining({ vm_id: vmId, desired_state: 'running' })]);
    await desiredOnB([{ vm_id: vmId, state: 'running' }]);
    await desiredOnB([{ vm_id: vmId, state: 'running' }]);

    expect((await h.request('POST', `/v1/vms/${vmId}/stop`, { token: admin })).statusCode).toBe(200);
    expect((await desiredOnB([{ vm_id: vmId, state: 'running' }])).vms).toEqual([expect.objectContaining({ vm_id: vmId, desired_state: 'stopped' })]);
    await desiredOnB([{ vm_id: vmId, state: 'stopped' }]);

    // The leader's sweep (on A) marks the silent node unreachable; its next heartbeat to B makes it ready again.
    clock.advance(60_000);
    await sweepSilentNodes({ store: h.store, clock, ids: makeIdSource(clock) });
    const returned = await desiredOnB([{ vm_id: vmId, state: 'stopped' }]);
    expect(returned.node.state).toBe('ready');
    const node = await h.request('GET', `/v1/nodes/told-by-b?tenant_id=${TENANT}`, { token: h.adminToken });
    expect(node.json()).toMatchObject({ state: 'ready', vms: [expect.objectContaining({ vm_id: vmId, state: 'stopped' })] });
  });
});
