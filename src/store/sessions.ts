/**
 * Sessions (SPEC §5): one row per (tenant, token block) seen in use. Rows are written only by a
 * server's flusher, in one transaction of upserts whose counts add and whose times widen, so several
 * replicas flushing the same session each add their own requests and none overwrites another's.
 */
import type { Dialect } from './dialect.js';
import { prepareQuery } from './prepared.js';
import type { Db, SessionsTable } from './schema.js';

export type SessionRow = SessionsTable;

/**
 * Adds each row's count to the stored one and widens its first and last seen times. On SQLite one
 * prepared statement a row: a flush runs on the event loop, and building a many-row statement each
 * second (and SQLite parsing it, its text new every time) held the loop for milliseconds. On
 * PostgreSQL, statements of up to ROWS_PER_STATEMENT rows, each one round trip.
 * The rows must have distinct keys (PostgreSQL refuses one statement touching a row twice); a
 * flush's rows do, being keyed by (tenant, block id).
 */
export async function upsertSessions(trx: Db, dialect: Dialect, rows: readonly SessionRow[]): Promise<void> {
  if (dialect === 'sqlite') {
    for (const r of rows) {
      await upsertSession(trx, r.tenant_id, r.token_id, r.name, r.subject, r.scopes, r.chain, r.first_seen, r.last_seen, r.last_address, r.request_count);
    }
    return;
  }
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    await upsertSessionRows(trx, rows.slice(start, start + ROWS_PER_STATEMENT)).execute();
  }
}

/** Rows per PostgreSQL statement: 100 rows of 10 columns stay far below its bound on parameters. */
const ROWS_PER_STATEMENT = 100;

function upsertSessionRows(db: Db, rows: readonly SessionRow[]) {
  return db
    .insertInto('sessions')
    .values(rows)
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'token_id']).doUpdateSet((eb) => {
        // RFC 3339 UTC times of one fixed form compare as text; CASE works on both stores, unlike
        // SQLite's scalar min/max and PostgreSQL's LEAST/GREATEST.
        const newer = eb('excluded.last_seen', '>', eb.ref('sessions.last_seen'));
        return {
          request_count: eb('sessions.request_count', '+', eb.ref('excluded.request_count')),
          first_seen: eb
            .case()
            .when('excluded.first_seen', '<', eb.ref('sessions.first_seen'))
            .then(eb.ref('excluded.first_seen'))
            .else(eb.ref('sessions.first_seen'))
            .end(),
          last_seen: eb.case().when(newer).then(eb.ref('excluded.last_seen')).else(eb.ref('sessions.last_seen')).end(),
          last_address: eb.case().when(newer).then(eb.ref('excluded.last_address')).else(eb.ref('sessions.last_address')).end(),
          // A block's name never changes; this fills the rows flushed before sessions kept names.
          name: eb.fn.coalesce('sessions.name', 'excluded.name'),
        };
      }),
    );
}

/** The same upsert for one row, built and compiled once. */
const upsertSession = prepareQuery(
  (
    db: Db,
    tenant_id: string,
    token_id: string,
    name: string | null,
    subject: string,
    scopes: string,
    chain: string,
    first_seen: string,
    last_seen: string,
    last_address: string,
    request_count: number,
  ) => upsertSessionRows(db, [{ tenant_id, token_id, name, subject, scopes, chain, first_seen, last_seen, last_address, request_count }]),
);

export async function findSession(db: Db, tenantId: string, tokenId: string): Promise<SessionRow | undefined> {
  const row = await db.selectFrom('sessions').selectAll().where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).executeTakeFirst();
  return row && { ...row, request_count: Number(row.request_count) };
}

export async function listSessionRows(db: Db, tenantId: string, afterId: string | undefined, limit: number): Promise<SessionRow[]> {
  const rows = await db
    .selectFrom('sessions')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .$if(afterId !== undefined, (q) => q.where('token_id', '>', afterId!))
    .orderBy('token_id')
    .limit(limit)
    .execute();
  // PostgreSQL returns bigint as text.
  return rows.map((row) => ({ ...row, request_count: Number(row.request_count) }));
}
