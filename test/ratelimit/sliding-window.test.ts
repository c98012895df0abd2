/**
 * The per-tenant rate limiter (SPEC §6: at most `api_rate_limit_rpm` requests per tenant in any
 * 60 s), counted in whole seconds: a request is admitted while the current second and the 60 before
 * it hold fewer than the limit. Time is passed in explicitly, so nothing here sleeps.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { secondOf, SlidingWindowLimiter, WINDOW_MS } from '../../src/ratelimit/sliding-window.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

describe('SlidingWindowLimiter', () => {
  it('admits `limit` requests at one instant and refuses the next with remaining 0', () => {
    const limiter = new SlidingWindowLimiter();
    const remaining: number[] = [];
    for (let i = 0; i < 5; i++) {
      const decision = limiter.take('acme', 5, T0);
      expect(decision.allowed).toBe(true);
      expect(decision.limit).toBe(5);
      remaining.push(decision.remaining);
    }
    expect(remaining).toEqual([4, 3, 2, 1, 0]);
    // The second of T0 leaves the window when the 61st second after it begins.
    expect(limiter.take('acme', 5, T0)).toEqual({ allowed: false, limit: 5, remaining: 0, resetSeconds: 61 });
  });

  it('says 0 seconds to wait while requests are left, and the time until the oldest second leaves once none are', () => {
    const limiter = new SlidingWindowLimiter();
    expect(limiter.take('acme', 2, T0).resetSeconds).toBe(0);
    const last = limiter.take('acme', 2, T0 + 10_500);
    expect(last).toMatchObject({ allowed: true, remaining: 0 });
    // The second of T0 leaves the window at T0 + 61 s, i.e. 50.5 s from now: rounded up to 51.
    expect(last.resetSeconds).toBe(51);
    expect(limiter.take('acme', 2, T0 + 10_500)).toMatchObject({ allowed: false, resetSeconds: 51 });
  });

  it('frees a slot when the 61st second after its own begins, not a millisecond earlier: 60 to 61 s after the request', () => {
    const limiter = new SlidingWindowLimiter();
    limiter.take('acme', 1, T0 + 999);
    expect(limiter.take('acme', 1, T0 + 60_999)).toMatchObject({ allowed: false, resetSeconds: 1 });
    expect(limiter.take('acme', 1, T0 + 61_000)).toMatchObject({ allowed: true, remaining: 0 });
    // A request at the start of its second waits the full 61 s.
    expect(limiter.take('acme', 1, T0 + 122_000 - 1).allowed).toBe(false);
    expect(limiter.take('acme', 1, T0 + 122_000).allowed).toBe(true);
  });

  it('slides: 30 at t=0 and 30 at t=30 s leave room for exactly 30 at t=61 s', () => {
    const limiter = new SlidingWindowLimiter();
    const admitted = (at: number, n: number) => Array.from({ length: n }, () => limiter.take('acme', 60, at)).filter((d) => d.allowed).length;
    expect(admitted(T0, 30)).toBe(30);
    expect(admitted(T0 + 30_000, 30)).toBe(30);
    expect(admitted(T0 + 45_000, 1)).toBe(0);
    expect(admitted(T0 + 60_999, 1)).toBe(0);
    expect(admitted(T0 + 61_000, 31)).toBe(30);
    // The requests from t=30 s are still in the window until t=91 s.
    expect(admitted(T0 + 90_999, 1)).toBe(0);
    expect(admitted(T0 + 91_000, 31)).toBe(30);
  });

  it('keeps one window per key: a full key does not limit another', () => {
    const limiter = new SlidingWindowLimiter();
    for (let i = 0; i < 3; i++) limiter.take('acme', 3, T0);
    expect(limiter.take('acme', 3, T0).allowed).toBe(false);
    expect(limiter.take('globex', 3, T0)).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('forgets a key on request', () => {
    const limiter = new SlidingWindowLimiter();
    limiter.take('acme', 1, T0);
    expect(limiter.take('acme', 1, T0).allowed).toBe(false);
    limiter.forget('acme');
    expect(limiter.take('acme', 1, T0).allowed).toBe(true);
  });

  it('keeps no state for a tenant once its requests have left the window', () => {
    const limiter = new SlidingWindowLimiter();
    for (let i = 0; i < 500; i++) limiter.take(`tenant-${i}`, 100_000, T0 + i);
    expect(limiter.size).toBe(500);
    limiter.take('busy', 100_000, T0 + 60_999);
    expect(limiter.size).toBe(501);
    // At T0 + 61 s the second of T0 has left the window: every quiet tenant is dropped.
    limiter.take('busy', 100_000, T0 + 61_000);
    expect(limiter.size).toBe(1);
    limiter.sweep(T0 + 122_000);
    expect(limiter.size).toBe(0);
  });

  it('keeps at most one count per second of the window, however many requests and whatever the limit', () => {
    const limiter = new SlidingWindowLimiter();
    let admitted = 0;
    for (let ms = 0; ms < 120_000; ms += 5) if (limiter.take('acme', 100_000, T0 + ms).allowed) admitted++;
    expect(admitted).toBe(24_000);
    const window = (limiter as unknown as { windows: Map<string, { seconds: number[] }> }).windows.get('acme')!;
    expect(window.seconds.length).toBe(61);
  });

  it('refuses everything when the limit is 0', () => {
    const limiter = new SlidingWindowLimiter();
    expect(limiter.take('acme', 0, T0)).toEqual({ allowed: false, limit: 0, remaining: 0, resetSeconds: 60 });
    expect(limiter.take('acme', 0, T0 + 10 * WINDOW_MS).allowed).toBe(false);
  });

  // Gaps between requests: often zero (bursts), often near the window's edge, sometimes anything.
  const gap = fc.oneof(
    fc.constantFrom(0, 1, 999, 1000, WINDOW_MS - 1, WINDOW_MS, WINDOW_MS + 1),
    fc.integer({ min: 0, max: 2000 }),
    fc.integer({ min: 0, max: 2 * WINDOW_MS }),
  );
  const scenario = fc.record({
    limit: fc.integer({ min: 1, max: 12 }),
    gaps: fc.array(gap, { minLength: 1, maxLength: 300 }),
  });

  it('property: never more than `limit` admitted in any 60 s window', () => {
    fc.assert(
      fc.property(scenario, ({ limit, gaps }) => {
        const limiter = new SlidingWindowLimiter();
        const admitted: number[] = [];
        let now = T0;
        for (const g of gaps) {
          now += g;
          if (limiter.take('k', limit, now).allowed) admitted.push(now);
        }
        // The fullest half-open window [s, s + 60 s) starts at an admitted request.
        for (const start of admitted) {
          const inWindow = admitted.filter((t) => t >= start && t < start + WINDOW_MS).length;
          expect(inWindow).toBeLessThanOrEqual(limit);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: a request is refused only when its second and the 60 before hold `limit` admitted requests, and the reply tells the truth', () => {
    fc.assert(
      fc.property(scenario, ({ limit, gaps }) => {
        const limiter = new SlidingWindowLimiter();
        const admitted: number[] = [];
        let now = T0;
        for (const g of gaps) {
          now += g;
          // The reference model: a plain list of admitted times, counted by second.
          const counted = (t: number) => secondOf(t) >= secondOf(now) - 60;
          const inWindow = admitted.filter(counted);
          // Never stricter than an exact log of the last 61 s: everything counted is within them.
          expect(inWindow.every((t) => t > now - WINDOW_MS - 1000)).toBe(true);
          const decision = limiter.take('k', limit, now);
          expect(decision.allowed).toBe(inWindow.length < limit);
          if (decision.allowed) {
            admitted.push(now);
            expect(decision.remaining).toBe(limit - inWindow.length - 1);
          } else {
            expect(decision.remaining).toBe(0);
          }
          if (decision.remaining === 0) {
            // Retry-After is honest: waiting that long frees a slot, and it is the shortest whole-second wait that does.
            const window = admitted.filter(counted);
            const freedAt = (secondOf(window[0]!) + 61) * 1000;
            expect(decision.resetSeconds).toBe(Math.ceil((freedAt - now) / 1000));
            expect(decision.resetSeconds).toBeGreaterThanOrEqual(1);
          } else {
            expect(decision.resetSeconds).toBe(0);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('property: keys never influence each other', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), gap), { maxLength: 200 }), fc.integer({ min: 1, max: 8 }), (requests, limit) => {
        const shared = new SlidingWindowLimiter();
        const separate = new Map(['a', 'b', 'c'].map((k) => [k, new SlidingWindowLimiter()]));
        let now = T0;
        for (const [key, g] of requests) {
          now += g;
          expect(shared.take(key, limit, now)).toEqual(separate.get(key)!.take(key, limit, now));
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('SlidingWindowLimiter when the limit changes', () => {
  it('keeps the newest requests, so a lowered limit applies to the minute already under way', () => {
    const limiter = new SlidingWindowLimiter();
    for (let i = 0; i < 10; i++) expect(limiter.take('t', 10, i * 1000).allowed).toBe(true);
    // Lowered to 5 at t=20s: the window already holds 10, so nothing more until the seconds 0 to 5
    // have left it, at t=66 s.
    expect(limiter.take('t', 5, 20_000).allowed).toBe(false);
    expect(limiter.take('t', 5, 20_000).resetSeconds).toBe(46);
    expect(limiter.take('t', 5, 65_999).allowed).toBe(false);
    expect(limiter.take('t', 5, 66_000).allowed).toBe(true);
  });

  it('keeps every request when the limit is raised', () => {
    const limiter = new SlidingWindowLimiter();
    for (let i = 0; i < 5; i++) expect(limiter.take('t', 5, i).allowed).toBe(true);
    let admitted = 0;
    for (let i = 0; i < 20; i++) if (limiter.take('t', 8, 1000 + i).allowed) admitted++;
    expect(admitted).toBe(3);
  });
});
