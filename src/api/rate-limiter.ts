/**
 * Where a tenant's rate-limit window lives. One SQLite server is the only process serving its
 * tenants, so the window stays in its memory. PostgreSQL may have several replicas serving the same
 * tenant, so they share the window in the database, leasing a few slots at a time so that a request
 * rarely waits for it (docs/decisions/0004-rate-limit-across-replicas.md).
 */
import { LeasedLimiter } from '../ratelimit/leases.js';
import { SlidingWindowLimiter, type RateDecision } from '../ratelimit/sliding-window.js';
import { rateSlotBank, readRateWindows } from '../store/rate-events.js';
import type { Store } from '../store/store.js';

export interface RateLimiter {
  take(tenantId: string, limit: number, now: number): Promise<RateDecision>;
  forget(tenantId: string): Promise<void>;
  /**
   * Requests admitted to each tenant in the window at `now` (tenants with none left out), for the
   * metrics: from memory on SQLite; on PostgreSQL from the shared window, so every replica's count
   * is the whole platform's (leased slots count as taken, as they do for the limit).
   */
  usage(now: number): Promise<ReadonlyMap<string, number>>;
}

export function rateLimiterFor(store: Store): RateLimiter {
  if (store.dialect === 'postgres') {
    const leased = new LeasedLimiter(rateSlotBank(store.db));
    return {
      take: (tenantId, limit, now) => leased.take(tenantId, limit, now),
      forget: (tenantId) => leased.forget(tenantId),
      usage: (now) => readRateWindows(store.db, now),
    };
  }
  const memory = new SlidingWindowLimiter();
  return {
    take: async (tenantId, limit, now) => memory.take(tenantId, limit, now),
    forget: async (tenantId) => memory.forget(tenantId),
    usage: async (now) => memory.usage(now),
  };
}
