/**
 * Sessions (SPEC §5): one row per (tenant, token block) seen in use. Rows are written only by a
 * server's flusher, in one transaction of upserts whose counts add and whose times widen, so several
 * replicas flushing the same session each add their own requests and none overwrites another's.
 */
import { sql, type InsertQueryBuilder, type InsertResult } from 'kysely';
import type { Dialect } from './dialect.js';
import { prepareQuery } from './prepared.js';
import type { Database, Db, SessionsTable } from './schema.js';

export type SessionRow = SessionsTable;

/**
 * Adds each row's count to the stored one and widens its first and last seen times. On SQLite one
 * prepared statement writes them all, the rows passed as one JSON array: a flush runs on the event
 * loop, and a statement a row (about 100 a second from 1,000 nodes' tokens) held it for
 * milliseconds, as a many-row statement built each second did before that (its text new each time,
 * so SQLite parsed it anew). On PostgreSQL, statements of up to ROWS_PER_STATEMENT rows, each one
 * round trip. The rows must have distinct keys (PostgreSQL refuses one statement touching a row
 * twice); a flush's rows do, being keyed by (tenant, block id).
 */
export async function upsertSessions(trx: Db, dialect: Dialect, rows: readonly SessionRow[]): Promise<void> {
  if (rows.length === 0) return;
  if (dialect === 'sqlite') {
    await upsertSessionsFromJson(trx, JSON.stringify(rows.map((r) => SESSION_COLUMNS.map((column) => r[column]))));
    return;
  }
  for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
    await mergeSessions(trx.insertInto('sessions').values(rows.slice(start, start + ROWS_PER_STATEMENT))).execute();
  }
}

/** Rows per PostgreSQL statement: 100 rows of 10 columns stay far below its bound on parameters. */
const ROWS_PER_STATEMENT = 100;

const SESSION_COLUMNS = ['tenant_id', 'token_id', 'name', 'subject', 'scopes', 'chain', 'first_seen', 'last_seen', 'last_address', 'request_count'] as const;

/** A session row already stored takes the new one's use: counts add, times widen. */
function mergeSessions(insert: InsertQueryBuilder<Database, 'sessions', InsertResult>) {
  return insert.onConflict((oc) =>
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

/**
 * SQLite: the rows of a JSON array of arrays (SESSION_COLUMNS' order) in one INSERT … SELECT from
 * json_each, built and compiled once. `where true` is SQLite's own rule for an upsert fed by a
 * SELECT (it tells its ON CONFLICT from a join's ON).
 */
const upsertSessionsFromJson = prepareQuery((db: Db, rows: string) =>
  mergeSessions(
    db
      .insertInto('sessions')
      .columns([...SESSION_COLUMNS])
      .expression(
        db
          .selectFrom(sql<{ value: string }>`json_each(${rows})`.as('r'))
          .select(SESSION_COLUMNS.map((column, i) => sql<string>`r.value ->> ${sql.lit(i)}`.as(column)))
          .where(sql<boolean>`true`),
      ),
  ),
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
