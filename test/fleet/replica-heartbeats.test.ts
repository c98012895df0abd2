/**
 * Heartbeats and the unreachable sweep across replicas (SPEC §1, §7; docs/design/fleet.md): a
 * heartbeat received by replica B is in the shared store, so the sweep the leader (A) runs does not
 * call the node unreachable. Two apps over two connections to the same store (the run's SQLite file
 * or PostgreSQL database), sharing one hand-moved clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import type { TypedApp } from '../../src/api/deps.js';
import { ManualClock, isoTime, makeIdSource } from '../../src/clock.js';
import { openWritableStore } from '../../src/cli/common.js';
import { rememberedDatabaseUrl } from '../../src/config/data-dir.js';
import { sweepSilentNodes } from '../../src/control/nodes.js';
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

  it('a heartbeat through replica B keeps the node ready in the sweep on leader A', async () => {
    const agent = await h.issueToken(TENANT, 'node:agent');
    const enrolled = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: 'roaming', capacity: CAPACITY } });
    expect(enrolled.statusCode, enrolled.body).toBe(201);

    clock.advance(20_000);
    const url = '/v1/nodes/roaming/heartbeat';
    const payload = JSON.stringify({ capacity: CAPACITY, vms: [] });
    const headers = {
      authorization: `Bearer ${agent.token}`,
      'content-type': 'application/json',
      ...signRequest({ method: 'POST', ...splitTarget(url), headers: {}, body: Buffer.from(payload) }, { privateKey: agent.keys.privateKey, clock }),
    };
    const beat = await appB.inject({ method: 'POST', url, headers, payload });
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
});
