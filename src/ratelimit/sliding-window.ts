/**
 * The per-tenant API rate limit (SPEC §6): at most `limit` requests in any 60-second window. An exact
 * sliding log: for each tenant a ring of the last `limit` admitted request times. A request is
 * admitted when the oldest of those is at least a window old. Memory is 8 bytes per unit of the
 * limit, which the API caps (api_rate_limit_rpm ≤ 100000).
 */
export const WINDOW_MS = 60_000;

export interface RateDecision {
  allowed: boolean;
  limit: number;
  /** Requests still admissible in the current window after this one. */
  remaining: number;
  /** Seconds until at least one more request is admissible (0 when one is now). */
  resetSeconds: number;
}

class TenantWindow {
  readonly times: Float64Array;
  next = 0;
  constructor(readonly limit: number) {
    this.times = new Float64Array(limit).fill(-Infinity);
  }
}

export class SlidingWindowLimiter {
  private readonly windows = new Map<string, TenantWindow>();

  /** Decides and, when allowed, records one request for `key` at time `now` (ms). */
  take(key: string, limit: number, now: number): RateDecision {
    let window = this.windows.get(key);
    if (!window || window.limit !== limit) {
      window = resized(window, limit);
      this.windows.set(key, window);
    }
    if (limit === 0) return { allowed: false, limit, remaining: 0, resetSeconds: WINDOW_MS / 1000 };
    const oldest = window.times[window.next]!;
    if (now - oldest < WINDOW_MS) {
      return { allowed: false, limit, remaining: 0, resetSeconds: Math.ceil((oldest + WINDOW_MS - now) / 1000) };
    }
    window.times[window.next] = now;
    window.next = (window.next + 1) % limit;
    const inWindow = countSince(window, now - WINDOW_MS);
    const oldestNow = window.times[window.next]!;
    return {
      allowed: true,
      limit,
      remaining: limit - inWindow,
      resetSeconds: inWindow < limit ? 0 : Math.ceil((oldestNow + WINDOW_MS - now) / 1000),
    };
  }

  forget(key: string): void {
    this.windows.delete(key);
  }
}

/**
 * A window for a changed limit that keeps the newest min(old, new) request times: deciding whether
 * the last 60 s hold `limit` requests needs only the newest `limit` of them, so the rule stays exact
 * across a change (a tenant cannot get the old and the new allowance in the same minute).
 */
function resized(old: TenantWindow | undefined, limit: number): TenantWindow {
  const window = new TenantWindow(limit);
  if (!old) return window;
  const keep = Math.min(old.limit, limit);
  for (let i = 0; i < keep; i++) {
    // Oldest kept first, so the ring stays in time order from `next`.
    window.times[i] = old.times[(old.next + old.limit - keep + i) % old.limit]!;
  }
  window.next = limit === 0 ? 0 : keep % limit;
  return window;
}

/** Entries newer than `since`: the ring is ordered by time from `next`, so binary search it. */
function countSince(window: TenantWindow, since: number): number {
  const { times, next, limit } = window;
  let lo = 0;
  let hi = limit;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[(next + mid) % limit]! > since) hi = mid;
    else lo = mid + 1;
  }
  return limit - lo;
}
