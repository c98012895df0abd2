/**
 * The per-tenant rate limiter (SPEC §6: at most `api_rate_limit_rpm` requests per tenant in any
 * 60 s). Time is passed in explicitly, so nothing here sleeps.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SlidingWindowLimiter, WINDOW_MS } from '../../src/ratelimit/sliding-window.js';

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
    expect(limiter.take('acme', 5, T0)).toEqual({ allowed: false, limit: 5, remaining: 0, resetSeconds: 60 });
  });

  it('says 0 seconds to wait while requests are left, and the time to the oldest expiry once none are', () => {
    const limiter = new SlidingWindowLimiter();
    expect(limiter.take('acme', 2, T0).resetSeconds).toBe(0);
    const last = limiter.take('acme', 2, T0 + 10_500);
    expect(last).toMatchObject({ allowed: true, remaining: 0 });
    // The first request leaves the window 60 s after T0, i.e. 49.5 s from now: rounded up to 50.
    expect(last.resetSeconds).toBe(50);
    expect(limiter.take('acme', 2, T0 + 10_500)).toMatchObject({ allowed: false, resetSeconds: 50 });
  });

  it('frees a slot exactly 60 s after the request that took it, not a millisecond earlier', () => {
    const limiter = new SlidingWindowLimiter();
    limiter.take('acme', 1, T0);
    expect(limiter.take('acme', 1, T0 + WINDOW_MS - 1)).toMatchObject({ allowed: false, resetSeconds: 1 });
    expect(limiter.take('acme', 1, T0 + WINDOW_MS)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it('slides: 30 at t=0 and 30 at t=30 s leave room for exactly 30 at t=61 s', () => {
    const limiter = new SlidingWindowLimiter();
    const admitted = (at: number, n: number) => Array.from({ length: n }, () => limiter.take('acme', 60, at)).filter((d) => d.allowed).length;
    expect(admitted(T0, 30)).toBe(30);
    expect(admitted(T0 + 30_000, 30)).toBe(30);
    expect(admitted(T0 + 45_000, 1)).toBe(0);
    expect(admitted(T0 + 61_000, 31)).toBe(30);
    // The requests from t=30 s are still in the window until t=90 s.
    expect(admitted(T0 + 89_999, 1)).toBe(0);
    expect(admitted(T0 + 90_000, 31)).toBe(30);
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

  it('property: a request is refused only when the last 60 s already hold `limit` admitted requests, and the reply tells the truth', () => {
    fc.assert(
      fc.property(scenario, ({ limit, gaps }) => {
        const limiter = new SlidingWindowLimiter();
        const admitted: number[] = [];
        let now = T0;
        for (const g of gaps) {
          now += g;
          const inWindow = admitted.filter((t) => t > now - WINDOW_MS);
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
            const window = admitted.filter((t) => t > now - WINDOW_MS);
            const freedAt = window[0]! + WINDOW_MS;
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
    // Lowered to 5 at t=20s: the last 60 s already hold 10, so nothing more until the 6th newest expires.
    expect(limiter.take('t', 5, 20_000).allowed).toBe(false);
    expect(limiter.take('t', 5, 64_999).allowed).toBe(false);
    expect(limiter.take('t', 5, 65_000).allowed).toBe(true);
  });

  it('keeps every request when the limit is raised', () => {
    const limiter = new SlidingWindowLimiter();
    for (let i = 0; i < 5; i++) expect(limiter.take('t', 5, i).allowed).toBe(true);
    let admitted = 0;
    for (let i = 0; i < 20; i++) if (limiter.take('t', 8, 1000 + i).allowed) admitted++;
    expect(admitted).toBe(3);
  });
});
