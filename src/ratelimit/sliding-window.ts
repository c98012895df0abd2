/**
 * The per-tenant API rate limit (SPEC §6): at most `limit` requests in any 60-second window, counted
 * in whole seconds of the server's clock. A request is admitted when the current second and the 60
 * before it hold fewer than `limit` admitted requests. A window of 60 s touches at most 61 seconds,
 * so no 60 s ever holds more than `limit`; what this gives up against an exact log of request times
 * is at most one second: a slot frees between 60 and 61 s after the request that took it.
 *
 * Memory follows the traffic: a tenant keeps one (second, count) pair per second in which it was
 * admitted something, at most 61 pairs whatever its limit, and nothing once they have all left the
 * window (`sweep`, which `take` runs at most once a second).
 */
export const WINDOW_MS = 60_000;
export const SECOND_MS = 1000;
/** The seconds a decision counts: the current one and the 60 before it. */
export const WINDOW_SECONDS = WINDOW_MS / SECOND_MS + 1;

export interface RateDecision {
  allowed: boolean;
  limit: number;
  /** Requests still admissible in the current window after this one. */
  remaining: number;
  /** Seconds until at least one more request is admissible (0 when one is now). */
  resetSeconds: number;
}

/** Admitted requests per second, oldest first, for the seconds still in the window. */
export interface SecondCounts {
  seconds: number[];
  counts: number[];
}

export function secondOf(now: number): number {
  return Math.floor(now / SECOND_MS);
}

/** The first second a decision at `now` counts. */
export function windowStart(now: number): number {
  return secondOf(now) - WINDOW_SECONDS + 1;
}

/**
 * The decision's numbers once `used` requests fill the window `counts` (which already counts this
 * request, if admitted): what is left, and when a refused request could next be admitted.
 */
export function describeWindow(counts: SecondCounts, used: number, limit: number, now: number, allowed: boolean): RateDecision {
  if (used < limit) return { allowed, limit, remaining: limit - used, resetSeconds: 0 };
  const frees = roomFreesAt(counts, used, limit);
  // A limit of 0 never frees: say a whole window.
  const resetSeconds = frees === Infinity ? WINDOW_MS / 1000 : Math.ceil((frees - now) / 1000);
  return { allowed, limit, remaining: 0, resetSeconds };
}

/**
 * When enough of the oldest seconds of a full window have left it for the rest to be below `limit`
 * (ms); Infinity for a limit of 0.
 */
export function roomFreesAt(counts: SecondCounts, used: number, limit: number): number {
  let left = used;
  for (let i = 0; i < counts.seconds.length; i++) {
    left -= counts.counts[i]!;
    if (left < limit) return (counts.seconds[i]! + WINDOW_SECONDS) * SECOND_MS;
  }
  return Infinity;
}

interface TenantWindow extends SecondCounts {
  total: number;
}

export class SlidingWindowLimiter {
  private readonly windows = new Map<string, TenantWindow>();
  private sweptSecond = -Infinity;

  /** Decides and, when allowed, records one request for `key` at time `now` (ms). */
  take(key: string, limit: number, now: number): RateDecision {
    const second = secondOf(now);
    if (second > this.sweptSecond) this.sweep(now);
    let window = this.windows.get(key);
    if (window) dropBefore(window, windowStart(now));
    const used = window?.total ?? 0;
    if (used >= limit) return describeWindow(window ?? { seconds: [], counts: [] }, used, limit, now, false);
    if (!window) {
      window = { seconds: [], counts: [], total: 0 };
      this.windows.set(key, window);
    }
    const last = window.seconds.length - 1;
    if (last >= 0 && window.seconds[last] === second) window.counts[last]! += 1;
    else {
      window.seconds.push(second);
      window.counts.push(1);
    }
    window.total += 1;
    return describeWindow(window, window.total, limit, now, true);
  }

  forget(key: string): void {
    this.windows.delete(key);
  }

  /** Requests each key had admitted in the window at `now`, for the metrics; keys with none are left out. Changes nothing. */
  usage(now: number): Map<string, number> {
    const start = windowStart(now);
    const used = new Map<string, number>();
    for (const [key, window] of this.windows) {
      let total = 0;
      for (let i = 0; i < window.seconds.length; i++) if (window.seconds[i]! >= start) total += window.counts[i]!;
      if (total > 0) used.set(key, total);
    }
    return used;
  }

  /** Drops every key whose requests have all left the window at `now`: a quiet tenant costs nothing. */
  sweep(now: number): void {
    this.sweptSecond = secondOf(now);
    const start = windowStart(now);
    for (const [key, window] of this.windows) {
      if ((window.seconds.at(-1) ?? -Infinity) < start) this.windows.delete(key);
    }
  }

  /** Keys that hold any state. */
  get size(): number {
    return this.windows.size;
  }
}

function dropBefore(window: TenantWindow, start: number): void {
  let n = 0;
  while (n < window.seconds.length && window.seconds[n]! < start) {
    window.total -= window.counts[n]!;
    n++;
  }
  if (n > 0) {
    window.seconds.splice(0, n);
    window.counts.splice(0, n);
  }
}
