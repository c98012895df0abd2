/**
 * Quiet heartbeats (docs/design/fleet.md): a heartbeat that changes nothing but the node's liveness
 * time is held in memory and written with every other node's in one flush, at most once a flush
 * period, through the real app on whichever store the run uses. The flusher's timer is set to an hour
 * so the test flushes by hand, as the timer would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flushBackgroundWrites, flushHeartbeats } from '../../src/api/app.js';
import { ManualClock, isoTime } from '../../src/clock.js';
import { HEARTBEAT_INTERVAL_S, storedHeartbeatMs } from '../../src/control/nodes.js';
import { groupCommitStats } from '../../src/store/group-commit.js';
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

  it("writes session use and quiet heartbeats' times in one transaction, as the flusher's timer does", async () => {
    const beats = [await enroll('together-1'), await enroll('together-2')];
    // Whatever the enrolments left is written first, so that only the beats below are pending.
    await flushBackgroundWrites(h.app);
    clock.advance(storedHeartbeatMs(HEARTBEAT_INTERVAL_S));
    const heardAt = isoTime(clock.now());
    for (const beat of beats) await beat();
    const sessionsBefore = await h.store.db.selectFrom('sessions').select(['token_id', 'request_count']).where('tenant_id', '=', TENANT).execute();
    const before = groupCommitStats(h.store.db);

    await flushBackgroundWrites(h.app);

    const after = groupCommitStats(h.store.db);
    // One COMMIT for both kinds of rows (two writes in it), not one each.
    expect(after.commits - before.commits).toBe(1);
    expect(after.writes - before.writes).toBe(2);
    for (const nodeId of ['together-1', 'together-2']) expect((await storedRow(nodeId)).last_heartbeat_at).toBe(heardAt);
    const sessionsAfter = await h.store.db.selectFrom('sessions').select(['token_id', 'request_count']).where('tenant_id', '=', TENANT).execute();
    const counted = (rows: { request_count: number | string }[]) => rows.reduce((sum, row) => sum + Number(row.request_count), 0);
    expect(counted(sessionsAfter) - counted(sessionsBefore)).toBe(2);
  });

  it('counts on /metrics how each heartbeat was answered: from memory when quiet, through the store otherwise', async () => {
    const answered = async () => {
      const res = await h.request('GET', '/metrics');
      expect(res.statusCode).toBe(200);
      const count = (how: string) => Number(new RegExp(`^ppn_heartbeats_total\\{answered="${how}"\\} (\\d+)$`, 'm').exec(res.body)?.[1]);
      return { memory: count('memory'), store: count('store') };
    };
    const beat = await enroll('counted-1');
    const before = await answered();
    await beat(); // the first since the enrolment: the store's answer is read and remembered
    await beat();
    await beat();
    await beat({ ...CAPACITY, cpus: 16 }); // a change: through the store
    const after = await answered();
    expect(after.memory - before.memory).toBe(2);
    expect(after.store - before.store).toBe(2);
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
