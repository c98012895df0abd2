/**
 * Long reads whose rows come back as arrays of the selected columns, in order, not as objects: the
 * ledger check reads every entry and tree node, and on SQLite making an object per row cost more than
 * the database's own work. The query is built with Kysely and runs like any other (on the connection
 * or transaction given, behind Kysely's lock on the SQLite connection); only the shape of its rows
 * differs.
 */
import type { CompiledQuery } from 'kysely';
import type { Dialect } from './dialect.js';
import type { Db } from './schema.js';

/** Starts the SQL of a query whose SQLite statement is put in raw mode (sqlite/open.ts). */
export const ARRAY_ROWS = '/* rows as arrays */ ';

export async function selectArrays(db: Db, dialect: Dialect, query: CompiledQuery): Promise<unknown[][]> {
  if (dialect === 'sqlite') return (await db.executeQuery<unknown[]>({ ...query, sql: ARRAY_ROWS + query.sql })).rows;
  // pg returns a row's columns in the select's order.
  return (await db.executeQuery<Record<string, unknown>>(query)).rows.map((row) => Object.values(row));
}
