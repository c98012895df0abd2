/**
 * The per-tenant rate limit held in the database, for replicas that share one (PostgreSQL): the same
 * exact sliding log as src/ratelimit/sliding-window.ts, one row per admitted request. Each decision
 * is one short transaction under a per-tenant advisory lock, so two replicas never both admit the
 * last slot; tenants never wait on each other. Times come from the deciding replica's clock.
 */
import { sql } from 'kysely';
import { WINDOW_MS, type RateDecision } from '../ratelimit/sliding-window.js';
import type { Db } from './schema.js';

/** First key of the two-key advisory locks that guard each tenant's rate log ("ppnr"). */
const RATE_LOCK_SPACE = 0x70706e72;

export async function takeRateSlot(db: Db, tenantId: string, limit: number, now: number): Promise<RateDecision> {
  return db.transaction().execute(async (trx) => {
    // The log guards against floods, not against crashes: after a database crash it may forget the
    // last instants of traffic, so its commits need not wait for the disk.
    await sql`set local synchronous_commit = off`.execute(trx);
    await sql`select pg_advisory_xact_lock(${RATE_LOCK_SPACE}, hashtext(${tenantId}))`.execute(trx);
    const since = now - WINDOW_MS;
    await trx.deleteFrom('rate_events').where('tenant_id', '=', tenantId).where('at_ms', '<=', since).execute();
    const { n } = await trx
      .selectFrom('rate_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('tenant_id', '=', tenantId)
      .executeTakeFirstOrThrow();
    const inWindow = Number(n);
    const allowed = inWindow < limit;
    if (allowed) await trx.insertInto('rate_events').values({ tenant_id: tenantId, at_ms: now }).execute();
    const used = inWindow + (allowed ? 1 : 0);
    if (used < limit) return { allowed, limit, remaining: limit - used, resetSeconds: 0 };
    // Full: a slot frees when the request that is `limit`-th newest leaves the window.
    const pivot = await trx
      .selectFrom('rate_events')
      .select('at_ms')
      .where('tenant_id', '=', tenantId)
      .orderBy('at_ms', 'desc')
      .offset(limit - 1)
      .limit(1)
      .executeTakeFirst();
    const frees = pivot ? Number(pivot.at_ms) + WINDOW_MS : now;
    return { allowed, limit, remaining: 0, resetSeconds: Math.max(0, Math.ceil((frees - now) / 1000)) };
  });
}

export async function forgetRateLog(db: Db, tenantId: string): Promise<void> {
  await db.deleteFrom('rate_events').where('tenant_id', '=', tenantId).execute();
}

/** Removes every tenant's requests that have left the window: background work for the leader. */
export async function sweepRateEvents(db: Db, now: number): Promise<number> {
  const result = await db
    .deleteFrom('rate_events')
    .where('at_ms', '<=', now - WINDOW_MS)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
