/**
 * The rate limit shared by replicas through one PostgreSQL database (src/ratelimit/leases.ts): two
 * limiters over the same `rate_slots` table stand for two replicas. They hammer one tenant with
 * concurrent bursts on one simulated clock; the bound the docs state is that together they never
 * admit more than the limit in any 60 s, and that they ask the database about once per lease, not
 * once per request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { LeasedLimiter } from '../../src/ratelimit/leases.js';
import { WINDOW_MS } from '../../src/ratelimit/sliding-window.js';
import { rateSlotBank, sweepRateEvents } from '../../src/store/rate-events.js';
import { startHarness, type Harness } from '../support/harness.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');

/** A small deterministic generator, so a failure replays. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** The most admitted requests any half-open 60 s window holds; the fullest one starts at an admitted request. */
function fullestWindow(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let end = 0;
  for (let start = 0; start < sorted.length; start++) {
    while (end < sorted.length && sorted[end]! < sorted[start]! + WINDOW_MS) end++;
    most = Math.max(most, end - start);
  }
  return most;
}

describe('rate limit leases across two replicas on one PostgreSQL', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('two replicas hammering one tenant never admit more than the limit in any 60 s, with about one grant per lease instead of a write per request', async () => {
    const limit = 600;
    const replicas = [new LeasedLimiter(rateSlotBank(h.store.db)), new LeasedLimiter(rateSlotBank(h.store.db))];
    const next = random(11);
    const admitted: number[] = [];
    let requests = 0;
    let now = T0;
    // Three simulated minutes of bursts: each step, up to 40 concurrent requests on each replica.
    while (now < T0 + 3 * WINDOW_MS) {
      now += Math.floor(next() * 400);
      const at = now;
      const burst = replicas.flatMap((replica) => Array.from({ length: Math.floor(next() * 40) }, () => replica.take('hammer', limit, at)));
      requests += burst.length;
      for (const decision of await Promise.all(burst)) if (decision.allowed) admitted.push(at);
    }
    expect(fullestWindow(admitted)).toBeLessThanOrEqual(limit);
    // Leases waste little: the fullest minute is within 5% of the limit (the traffic asks for ~4x).
    expect(fullestWindow(admitted)).toBeGreaterThanOrEqual(limit * 0.95);
    const grants = replicas[0]!.grants + replicas[1]!.grants;
    console.log(`leases: ${requests} requests, ${admitted.length} admitted, ${grants} grants, fullest minute ${fullestWindow(admitted)} of ${limit}`);
    expect(grants).toBeLessThan(requests / 10);
  });

  it('authenticated requests on PostgreSQL write no row per request: 200 in one second leave one rate_slots row and no rate_events', async () => {
    const clock = new ManualClock(T0 + 40 * WINDOW_MS);
    const app = await startHarness({ clock });
    try {
      await app.createTenant('reader', { api_rate_limit_rpm: 1000 });
      const { token } = await app.issueToken('reader', 'tenant:read');
      for (let i = 0; i < 200; i++) expect((await app.request('GET', '/v1/vms', { token })).statusCode).toBe(200);
      const slots = await app.store.db.selectFrom('rate_slots').selectAll().where('tenant_id', '=', 'reader').execute();
      expect(slots).toHaveLength(1);
      // Leases run ahead of the requests by less than one lease (at most limit / 8).
      expect(slots[0]!.taken).toBeGreaterThanOrEqual(200);
      expect(slots[0]!.taken).toBeLessThan(200 + 125);
      const events = await app.store.db.selectFrom('rate_events').selectAll().execute();
      expect(events).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('a refused flood asks the database at most once per 250 ms per replica', async () => {
    const replica = new LeasedLimiter(rateSlotBank(h.store.db));
    const limit = 5;
    let now = T0 + 10 * WINDOW_MS;
    for (let i = 0; i < limit; i++) expect((await replica.take('flooded', limit, now)).allowed).toBe(true);
    const before = replica.grants;
    const refusals: number[] = [];
    for (let i = 0; i < 1000; i++) {
      now += 1;
      const decision = await replica.take('flooded', limit, now);
      expect(decision.allowed).toBe(false);
      refusals.push(decision.resetSeconds);
    }
    // 1000 refusals over one simulated second: at most one new grant attempt per 250 ms.
    expect(replica.grants - before).toBeLessThanOrEqual(4);
    expect(Math.min(...refusals)).toBeGreaterThanOrEqual(59);
  });

  it('a tenant that goes quiet leaves no state on the replicas and, once swept, no rows', async () => {
    const replicas = [new LeasedLimiter(rateSlotBank(h.store.db)), new LeasedLimiter(rateSlotBank(h.store.db))];
    const start = T0 + 20 * WINDOW_MS;
    for (let i = 0; i < 50; i++) await replicas[i % 2]!.take(`quiet-${i % 7}`, 1000, start + i * 10);
    expect(replicas[0]!.size + replicas[1]!.size).toBeGreaterThan(0);
    const later = start + 62_000;
    await Promise.all(replicas.map((replica) => replica.settle(later)));
    expect(replicas.map((replica) => replica.size)).toEqual([0, 0]);
    await sweepRateEvents(h.store.db, later);
    const rows = await h.store.db.selectFrom('rate_slots').select('tenant_id').where('tenant_id', 'like', 'quiet-%').execute();
    expect(rows).toEqual([]);
  });

  it('gives unused slots back, so a tenant moving to the other replica keeps its whole limit', async () => {
    const a = new LeasedLimiter(rateSlotBank(h.store.db));
    const b = new LeasedLimiter(rateSlotBank(h.store.db));
    const limit = 80;
    const start = T0 + 30 * WINDOW_MS;
    // Replica a leases ahead (its leases grow while they run out), then the tenant's traffic moves to b.
    let onA = 0;
    for (let i = 0; i < 30; i++) if ((await a.take('mover', limit, start)).allowed) onA++;
    await a.settle(start + 1000);
    let onB = 0;
    for (let i = 0; i < 100; i++) if ((await b.take('mover', limit, start + 1000)).allowed) onB++;
    expect(onA + onB).toBe(limit);
  });
});
