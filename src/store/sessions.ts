/**
 * Sessions (SPEC §5): one row per (tenant, token block) seen in use. Rows are written only by a
 * server's flusher, in one transaction of upserts whose counts add and whose times widen, so several
 * replicas flushing the same session each add their own requests and none overwrites another's.
 */
import type { Db, SessionsTable } from './schema.js';

export type SessionRow = SessionsTable;

/** Rows per upsert statement: 100 rows of 10 columns stay far below either store's bound on parameters. */
const ROWS_PER_STATEMENT = 100;

/**
 * Adds each row's count to the stored one and widens its first and last seen times, in multi-row
 * statements of ROWS_PER_STATEMENT. The rows must have distinct keys (PostgreSQL refuses one
 * statement touching a row twice); a flush's rows do, being keyed by (tenant, block id).
 */
export async function upsertSessions(trx: Db, rows: readonly SessionRow[]): Promise<void> {
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    await trx
      .insertInto('sessions')
      .values(rows.slice(start, start + ROWS_PER_STATEMENT))
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
      )
      .execute();
  }
}

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
