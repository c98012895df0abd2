/**
 * Where a tenant's rate-limit window lives. One SQLite server is the only process serving its
 * tenants, so the exact sliding log stays in its memory. PostgreSQL may have several replicas
 * serving the same tenant, so the log lives in the database and every replica decides against it
 * (docs/decisions/0004-rate-limit-across-replicas.md).
 */
import { SlidingWindowLimiter, type RateDecision } from '../ratelimit/sliding-window.js';
import { forgetRateLog, takeRateSlot } from '../store/rate-events.js';
import type { Store } from '../store/store.js';

export interface RateLimiter {
  take(tenantId: string, limit: number, now: number): Promise<RateDecision>;
  forget(tenantId: string): Promise<void>;
}

export function rateLimiterFor(store: Store): RateLimiter {
  if (store.dialect === 'postgres') {
    return {
      take: (tenantId, limit, now) => takeRateSlot(store.db, tenantId, limit, now),
      forget: (tenantId) => forgetRateLog(store.db, tenantId),
    };
  }
  const memory = new SlidingWindowLimiter();
  return {
    take: async (tenantId, limit, now) => memory.take(tenantId, limit, now),
    forget: async (tenantId) => memory.forget(tenantId),
  };
}
