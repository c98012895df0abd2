/**
 * The rate-limit window shared by replicas (PostgreSQL): `rate_slots` holds, per tenant and second,
 * the slots leased to replicas in that second (src/ratelimit/leases.ts). A grant is one short
 * transaction under a per-tenant advisory lock, so two replicas never both lease the last slot and
 * tenants never wait on each other; giving slots back only lowers counts, so it needs no lock and
 * goes in one batched statement. Seconds come from the deciding replica's clock.
 *
 * `rate_events` (one row per admitted request) is no longer written; a server of the previous
 * version may still write it during a rolling upgrade, so the sweep keeps emptying it.
 */
import { sql } from 'kysely';
import type { Grant, GrantRequest, SlotBank, SlotReturn } from '../ratelimit/leases.js';
import { secondOf, windowStart, WINDOW_MS } from '../ratelimit/sliding-window.js';
import type { Db } from './schema.js';

/** First key of the two-key advisory locks that guard each tenant's window ("ppnr"). */
const RATE_LOCK_SPACE = 0x70706e72;

export function rateSlotBank(db: Db): SlotBank {
  return {
    grant: (request) => grantRateSlots(db, request),
    giveBack: (returns) => giveBackRateSlots(db, returns),
    forget: (tenantId) => forgetRateLog(db, tenantId),
  };
}

export async function grantRateSlots(db: Db, { tenantId, limit, now, want, giveBack }: GrantRequest): Promise<Grant> {
  return db.transaction().execute(async (trx) => {
    // The window guards against floods, not against crashes: after a database crash it may forget
    // the last instants of traffic, so its commits need not wait for the disk.
    await sql`select set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock(${RATE_LOCK_SPACE}, hashtext(${tenantId}))`.execute(trx);
    if (giveBack) {
      await trx
        .updateTable('rate_slots')
        .set((eb) => ({ taken: eb('taken', '-', giveBack.count) }))
        .where('tenant_id', '=', tenantId)
        .where('second', '=', giveBack.second)
        .execute();
    }
    const rows = await trx
      .selectFrom('rate_slots')
      .select(['second', 'taken'])
      .where('tenant_id', '=', tenantId)
      .where('second', '>=', windowStart(now))
      .where('taken', '>', 0)
      .orderBy('second')
      .execute();
    const window = { seconds: rows.map((r) => Number(r.second)), counts: rows.map((r) => Number(r.taken)) };
    const used = window.counts.reduce((sum, n) => sum + n, 0);
    const granted = Math.max(0, Math.min(want, limit - used));
    if (granted === 0) return { granted, window };
    const second = secondOf(now);
    await trx
      .insertInto('rate_slots')
      .values({ tenant_id: tenantId, second, taken: granted })
      .onConflict((oc) => oc.columns(['tenant_id', 'second']).doUpdateSet((eb) => ({ taken: eb('rate_slots.taken', '+', eb.ref('excluded.taken')) })))
      .execute();
    addToWindow(window, second, granted);
    return { granted, window };
  });
}

/** Unused slots of ended leases, in one statement for every tenant. */
export async function giveBackRateSlots(db: Db, returns: SlotReturn[]): Promise<void> {
  // One row per (tenant, second): an UPDATE … FROM applies only one match per row.
  const merged = new Map<string, SlotReturn>();
  for (const r of returns) {
    const key = `${r.second} ${r.tenantId}`;
    const seen = merged.get(key);
    if (seen) seen.count += r.count;
    else merged.set(key, { ...r });
  }
  const all = [...merged.values()];
  await sql`
    update rate_slots as r set taken = r.taken - v.n
    from unnest(${all.map((r) => r.tenantId)}::text[], ${all.map((r) => r.second)}::bigint[], ${all.map((r) => r.count)}::int[]) as v(t, s, n)
    where r.tenant_id = v.t and r.second = v.s`.execute(db);
}

export async function forgetRateLog(db: Db, tenantId: string): Promise<void> {
  await db.deleteFrom('rate_slots').where('tenant_id', '=', tenantId).execute();
  await db.deleteFrom('rate_events').where('tenant_id', '=', tenantId).execute();
}

/** Slots taken per tenant in the window at `now`, every replica's together (tenants with none left out). */
export async function readRateWindows(db: Db, now: number): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('rate_slots')
    .select((eb) => ['tenant_id', eb.fn.sum<number | string>('taken').as('taken')])
    .where('second', '>=', windowStart(now))
    .groupBy('tenant_id')
    .execute();
  return new Map(rows.filter((row) => Number(row.taken) > 0).map((row) => [row.tenant_id, Number(row.taken)]));
}

/** Removes every tenant's seconds that have left the window: background work for the leader. */
export async function sweepRateEvents(db: Db, now: number): Promise<number> {
  const slots = await db.deleteFrom('rate_slots').where('second', '<', windowStart(now)).executeTakeFirst();
  const events = await db
    .deleteFrom('rate_events')
    .where('at_ms', '<=', now - WINDOW_MS)
    .executeTakeFirst();
  return Number(slots.numDeletedRows) + Number(events.numDeletedRows);
}

function addToWindow(window: { seconds: number[]; counts: number[] }, second: number, count: number): void {
  const at = window.seconds.findIndex((s) => s >= second);
  if (at === -1) {
    window.seconds.push(second);
    window.counts.push(count);
  } else if (window.seconds[at] === second) {
    window.counts[at]! += count;
  } else {
    window.seconds.splice(at, 0, second);
    window.counts.splice(at, 0, count);
  }
}
