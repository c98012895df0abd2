/**
 * Replicas leasing slots from one shared window (src/ratelimit/leases.ts), over a bank kept in
 * memory with the same rules as the PostgreSQL one (src/store/rate-events.ts, whose own test is
 * test/replicas/rate-limit-leases.test.ts). One replica must decide exactly as the one-server
 * limiter; several must never admit more than the limit in any 60 s together.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeasedLimiter, type Grant, type GrantRequest, type SlotBank, type SlotReturn } from '../../src/ratelimit/leases.js';
import { secondOf, SlidingWindowLimiter, WINDOW_MS, windowStart } from '../../src/ratelimit/sliding-window.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

/** The shared window: per tenant, slots charged per second. */
class MemoryBank implements SlotBank {
  readonly charged = new Map<string, Map<number, number>>();

  grant({ tenantId, limit, now, want, giveBack }: GrantRequest): Promise<Grant> {
    if (giveBack) this.subtract(giveBack);
    const seconds = this.charged.get(tenantId) ?? new Map<number, number>();
    this.charged.set(tenantId, seconds);
    const used = () => [...seconds].filter(([s, n]) => s >= windowStart(now) && n > 0);
    const held = used().reduce((sum, [, n]) => sum + n, 0);
    const granted = Math.max(0, Math.min(want, limit - held));
    if (granted > 0) seconds.set(secondOf(now), (seconds.get(secondOf(now)) ?? 0) + granted);
    const window = used().sort(([a], [b]) => a - b);
    return Promise.resolve({ granted, window: { seconds: window.map(([s]) => s), counts: window.map(([, n]) => n) } });
  }

  giveBack(returns: SlotReturn[]): Promise<void> {
    for (const r of returns) this.subtract(r);
    return Promise.resolve();
  }

  forget(tenantId: string): Promise<void> {
    this.charged.delete(tenantId);
    return Promise.resolve();
  }

  private subtract({ tenantId, second, count }: SlotReturn): void {
    const seconds = this.charged.get(tenantId)!;
    seconds.set(second, seconds.get(second)! - count);
  }
}

const gap = fc.oneof(
  fc.constantFrom(0, 1, 999, 1000, WINDOW_MS - 1, WINDOW_MS, WINDOW_MS + 1000),
  fc.integer({ min: 0, max: 400 }),
  fc.integer({ min: 0, max: 2 * WINDOW_MS }),
);

describe('LeasedLimiter', () => {
  it('property: one replica decides exactly as the one-server limiter, headers included', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.array(gap, { minLength: 1, maxLength: 300 }), async (limit, gaps) => {
        const replica = new LeasedLimiter(new MemoryBank());
        const server = new SlidingWindowLimiter();
        let now = T0;
        for (const g of gaps) {
          now += g;
          expect(await replica.take('t', limit, now)).toEqual(server.take('t', limit, now));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('property: replicas taking from one window never admit more than the limit in any 60 s together', async () => {
    const step = fc.record({ gap, burst: fc.array(fc.integer({ min: 0, max: 2 }), { maxLength: 30 }) });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.array(step, { minLength: 1, maxLength: 60 }), async (limit, steps) => {
        const bank = new MemoryBank();
        const replicas = [new LeasedLimiter(bank), new LeasedLimiter(bank), new LeasedLimiter(bank)];
        const admitted: number[] = [];
        let now = T0;
        for (const { gap: g, burst } of steps) {
          now += g;
          const at = now;
          // Concurrent: each take may wait on its replica's grant while the others run.
          const decisions = await Promise.all(burst.map((r) => replicas[r]!.take('t', limit, at)));
          for (const decision of decisions) if (decision.allowed) admitted.push(at);
        }
        for (const start of admitted) {
          expect(admitted.filter((t) => t >= start && t < start + WINDOW_MS).length).toBeLessThanOrEqual(limit);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('answers requests from a lease without asking the bank: a busy tenant costs a grant per lease, not per request', async () => {
    const replica = new LeasedLimiter(new MemoryBank());
    let admitted = 0;
    for (let ms = 0; ms < 10_000; ms += 1) if ((await replica.take('busy', 100_000, T0 + ms)).allowed) admitted++;
    expect(admitted).toBe(10_000);
    // Ten seconds: leases double to the tenant's rate within each second (1 + 2 + … + 512 ≥ 1000).
    expect(replica.grants).toBeLessThanOrEqual(10 * 10);
  });

  it('keeps no state for a tenant once its lease has ended and nothing is left to give back', async () => {
    const bank = new MemoryBank();
    const replica = new LeasedLimiter(bank);
    // Two requests each: a lease of 1, then one of 2 with a slot left over.
    for (let t = 0; t < 100; t++) for (let i = 0; i < 2; i++) await replica.take(`tenant-${t}`, 1000, T0 + t);
    expect(replica.size).toBe(100);
    expect([...bank.charged.values()].every((seconds) => seconds.get(secondOf(T0)) === 3)).toBe(true);
    await replica.settle(T0 + 1000);
    expect(replica.size).toBe(0);
    // What the leases did not spend went back: only the two spent slots stay charged.
    expect([...bank.charged.values()].every((seconds) => seconds.get(secondOf(T0)) === 2)).toBe(true);
  });
});
