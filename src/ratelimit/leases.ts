/**
 * The per-tenant rate limit when several replicas serve one tenant (PostgreSQL), without a database
 * write per request. The window is the one of sliding-window.ts (whole seconds, the current one and
 * the 60 before it), kept in a shared bank (src/store/rate-events.ts). A replica does not charge the
 * bank request by request: it asks for a *lease* of a few slots, charged to the current second, and
 * spends them from memory until they run out or the second ends. Unused slots go back to the bank.
 *
 * Every slot a replica spends was charged, before it was spent, to the second it is spent in, and a
 * lease is granted only while the window across every replica holds fewer than `limit`. So replicas
 * together never admit more than `limit` in any 60 s, exactly as one server would (with one clock:
 * each replica decides seconds by its own, see docs/design/quotas-and-rate-limits.md). What leases
 * cost instead is some under-admission: slots leased to one replica and not yet given back are
 * refused to the others for the rest of that second.
 */
import { describeWindow, roomFreesAt, secondOf, type RateDecision, type SecondCounts } from './sliding-window.js';

export interface SlotReturn {
  tenantId: string;
  second: number;
  count: number;
}

export interface GrantRequest {
  tenantId: string;
  limit: number;
  now: number;
  /** Slots to charge to second(now), if the window has room for them (fewer if not). */
  want: number;
  /** Unused slots of the tenant's previous lease, given back first. */
  giveBack: SlotReturn | null;
}

export interface Grant {
  granted: number;
  /** The tenant's window across every replica once the grant is charged. */
  window: SecondCounts;
}

/** The shared count; each `grant` is atomic for its tenant. */
export interface SlotBank {
  grant(request: GrantRequest): Promise<Grant>;
  giveBack(returns: SlotReturn[]): Promise<void>;
  forget(tenantId: string): Promise<void>;
}

interface Lease {
  second: number;
  limit: number;
  granted: number;
  left: number;
  window: SecondCounts;
  /** Requests the window holds after the grant, this lease's slots included. */
  charged: number;
}

interface TenantState {
  lease: Lease | null;
  /** The last refusal's window, answered from memory until `refusedUntil` (ms). */
  refusal: { limit: number; window: SecondCounts; used: number } | null;
  refusedUntil: number;
  pending: Promise<void> | null;
}

/** How long a refusal is answered without asking the bank again: slots other replicas give back free room early. */
const RECHECK_MS = 250;
/** How often unused slots of leases that ended are given back, and quiet tenants dropped. */
const SETTLE_MS = 250;
/** A lease is at most this share of the limit, so one replica cannot hold the whole of it idle. */
const LEASE_SHARE = 8;

export class LeasedLimiter {
  private readonly tenants = new Map<string, TenantState>();
  private settledAt = -Infinity;
  /** Grants asked of the bank: the database statements the limiter made on the request path. */
  grants = 0;

  constructor(private readonly bank: SlotBank) {}

  async take(tenantId: string, limit: number, now: number): Promise<RateDecision> {
    if (now - this.settledAt >= SETTLE_MS) {
      // Giving slots back only frees room sooner; if it fails they leave the window within 61 s.
      this.settle(now).catch(() => undefined);
    }
    for (;;) {
      let state = this.tenants.get(tenantId);
      if (!state) {
        state = { lease: null, refusal: null, refusedUntil: -Infinity, pending: null };
        this.tenants.set(tenantId, state);
      }
      if (state.pending) {
        await state.pending;
        continue;
      }
      const lease = state.lease;
      if (lease && lease.second === secondOf(now) && lease.limit === limit && lease.left > 0) {
        lease.left -= 1;
        return describeWindow(lease.window, lease.charged - lease.left, limit, now, true);
      }
      const refusal = state.refusal;
      if (refusal && refusal.limit === limit && now < state.refusedUntil) {
        return describeWindow(refusal.window, refusal.used, limit, now, false);
      }
      const pending = this.renew(state, tenantId, limit, now);
      state.pending = pending;
      try {
        await pending;
      } finally {
        state.pending = null;
      }
    }
  }

  /** Replaces the tenant's lease with a new grant from the bank, or remembers the refusal. */
  private async renew(state: TenantState, tenantId: string, limit: number, now: number): Promise<void> {
    const old = state.lease;
    state.lease = null;
    const giveBack = old && old.left > 0 ? { tenantId, second: old.second, count: old.left } : null;
    this.grants += 1;
    const { granted, window } = await this.bank.grant({ tenantId, limit, now, want: leaseSize(old, limit), giveBack });
    const charged = window.counts.reduce((sum, n) => sum + n, 0);
    if (granted > 0) {
      state.lease = { second: secondOf(now), limit, granted, left: granted, window, charged };
      state.refusal = null;
      return;
    }
    state.refusal = { limit, window, used: charged };
    state.refusedUntil = Math.min(now + RECHECK_MS, roomFreesAt(window, charged, limit));
  }

  /**
   * Gives back the unused slots of leases whose second has ended, in one batch, and drops tenants
   * with nothing left to remember, so a tenant that goes quiet costs no memory here.
   */
  async settle(now: number): Promise<void> {
    this.settledAt = now;
    const returns: SlotReturn[] = [];
    for (const [tenantId, state] of this.tenants) {
      if (state.pending) continue;
      const lease = state.lease;
      if (lease && lease.second < secondOf(now)) {
        if (lease.left > 0) returns.push({ tenantId, second: lease.second, count: lease.left });
        state.lease = null;
      }
      if (!state.lease && now >= state.refusedUntil) this.tenants.delete(tenantId);
    }
    if (returns.length > 0) await this.bank.giveBack(returns);
  }

  async forget(tenantId: string): Promise<void> {
    this.tenants.delete(tenantId);
    await this.bank.forget(tenantId);
  }

  /** Tenants this replica holds any state for. */
  get size(): number {
    return this.tenants.size;
  }
}

/**
 * How many slots to ask for: one for a tenant not seen this second, twice the last lease when that
 * one ran out within its second, else what the last lease used and one more: near the tenant's rate
 * on this replica, so a busy tenant costs a grant every few hundred requests and a quiet one gives
 * little back.
 */
function leaseSize(last: Lease | null, limit: number): number {
  if (!last) return 1;
  const used = last.granted - last.left;
  const wanted = last.left === 0 ? 2 * last.granted : used + 1;
  return Math.max(1, Math.min(wanted, Math.ceil(limit / LEASE_SHARE)));
}
