/**
 * The store: one interface over SQLite (embedded default) and, later, PostgreSQL. Each backend lives
 * in its own folder and is the only code that imports its driver; everything else talks Kysely
 * through the query modules beside this file.
 */
import { Migrator, sql, type Kysely, type Transaction } from 'kysely';
import { PpnError } from '../errors.js';
import { buildMigrations } from './migrations.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** A short description for logs, e.g. the database file. */
  readonly location: string;
  close(): Promise<void>;
}

export async function migrateStore(store: Store): Promise<void> {
  const migrator = new Migrator({
    db: store.db,
    provider: { getMigrations: async () => buildMigrations(store.dialect) },
  });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
}

/**
 * Runs `work` in one transaction. State changes and their ledger entries go through here together,
 * so either both commit or neither does (SPEC §8).
 */
export async function inTransaction<T>(store: Store, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  try {
    return await store.db.transaction().execute(work);
  } catch (error) {
    throw translateStoreError(error);
  }
}

/** Driver errors that mean "the store cannot be used now" become 503; everything else passes on. */
export function translateStoreError(error: unknown): unknown {
  if (error instanceof PpnError) return error;
  const code = (error as { code?: unknown })?.code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_IOERR' || code === 'SQLITE_FULL' || code === 'ECONNREFUSED' || code === '57P01') {
    return new PpnError('store_unavailable', 'the store is unavailable; try again');
  }
  return error;
}

/** True when the store answers a trivial query. */
export async function pingStore(store: Store): Promise<boolean> {
  try {
    await sql`select 1`.execute(store.db);
    return true;
  } catch {
    return false;
  }
}
