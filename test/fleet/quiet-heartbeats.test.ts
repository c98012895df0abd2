/**
 * Quiet heartbeats (docs/design/fleet.md): a heartbeat that changes nothing but the node's liveness
 * time is held in memory and written with every other node's in one flush, at most once a flush
 * period, through the real app on whichever store the run uses. The flusher's timer is set to an hour
 * so the test flushes by hand, as the timer would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flushHeartbeats } from '../../src/api/app.js';
import { ManualClock, isoTime } from '../../src/clock.js';
import { HEARTBEAT_INTERVAL_S, storedHeartbeatMs } from '../../src/control/nodes.js';
import { startHarness, type Harness } from '../support/harness.js';

const TENANT = 'quiet-fleet';
const CAPACITY = { cpus: 4, memory_mb_total: 8192, memory_mb_available: 6000, disk_gb_available: 100, kvm: true, load1: 0.1 };

describe('quiet heartbeats', () => {
  let h: Harness;
  let clock: ManualClock;

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    h = await startHarness({ clock, app: { sessionFlushMs: 3_600_000 } });
    await h.createTenant(TENANT);
  });
  afterAll(async () => {
    await h.close();
  });

  async function enroll(nodeId: string) {
    const issued = await h.issueToken(TENANT, 'node:agent');
    const res = await h.request('POST', '/v1/nodes', { token: issued.token, signWith: issued.keys.privateKey, body: { node_id: nodeId, capacity: CAPACITY } });
    expect(res.statusCode, res.body).toBe(201);
    return async (capacity = CAPACITY) => {
      const beat = await h.request('POST', `/v1/nodes/${nodeId}/heartbeat`, { token: issued.token, signWith: issued.keys.privateKey, body: { capacity, vms: [] } });
      expect(beat.statusCode, beat.body).toBe(200);
    };
  }

  const storedRow = (nodeId: string) =>
    h.store.db.selectFrom('nodes').selectAll().where('tenant_id', '=', TENANT).where('node_id', '=', nodeId).executeTakeFirstOrThrow();

  it('writes the liveness time of many quiet heartbeats from many nodes once, at the flush', async () => {
    const beats = [await enroll('quiet-1'), await enroll('quiet-2'), await enroll('quiet-3')];
    const enrolled = await storedRow('quiet-1');
    clock.advance(storedHeartbeatMs(HEARTBEAT_INTERVAL_S));
    // The first round finds each stored time old enough to move; the later rounds, 0.1 s apart, do not.
    const heardAt = isoTime(clock.now());
    for (let round = 0; round < 5; round += 1) {
      for (const beat of beats) await beat();
      clock.advance(100);
    }
    // No heartbeat wrote its node's row.
    expect(await storedRow('quiet-1')).toEqual(enrolled);

    await flushHeartbeats(h.app);
    for (const nodeId of ['quiet-1', 'quiet-2', 'quiet-3']) {
      expect(await storedRow(nodeId)).toEqual({
        ...enrolled,
        node_id: nodeId,
        public_key: expect.any(String),
        enrolled_by: expect.any(String),
        last_heartbeat_at: heardAt,
      });
    }
    // Nothing left to write: a second flush changes nothing.
    const flushed = await storedRow('quiet-2');
    await flushHeartbeats(h.app);
    expect(await storedRow('quiet-2')).toEqual(flushed);
  });

  it('writes a heartbeat that changes the node at once, with its time, and a later flush never moves the time back', async () => {
    const beat = await enroll('busy-1');
    clock.advance(storedHeartbeatMs(HEARTBEAT_INTERVAL_S));
    await beat(); // quiet: held for the flush
    clock.advance(1_000);
    await beat({ ...CAPACITY, cpus: 8 });
    const changedAt = isoTime(clock.now());
    expect(await storedRow('busy-1')).toMatchObject({ cpus: 8, last_heartbeat_at: changedAt });
    await flushHeartbeats(h.app);
    expect((await storedRow('busy-1')).last_heartbeat_at).toBe(changedAt);
  });
});
