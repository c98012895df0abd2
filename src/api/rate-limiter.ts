/**
 * Where a tenant's rate-limit window lives. One SQLite server is the only process serving its
 * tenants, so the window stays in its memory. PostgreSQL may have several replicas serving the same
 * tenant, so they share the window in the database, leasing a few slots at a time so that a request
 * rarely waits for it (docs/decisions/0004-rate-limit-across-replicas.md).
 */
import { LeasedLimiter } from '../ratelimit/leases.js';
import { SlidingWindowLimiter, type RateDecision } from '../ratelimit/sliding-window.js';
import { rateSlotBank } from '../store/rate-events.js';
import type { Store } from '../store/store.js';

export interface RateLimiter {
  take(tenantId: string, limit: number, now: number): Promise<RateDecision>;
  forget(tenantId: string): Promise<void>;
}

export function rateLimiterFor(store: Store): RateLimiter {
  if (store.dialect === 'postgres') return new LeasedLimiter(rateSlotBank(store.db));
  const memory = new SlidingWindowLimiter();
  return {
    take: async (tenantId, limit, now) => memory.take(tenantId, limit, now),
    forget: async (tenantId) => memory.forget(tenantId),
  };
}
