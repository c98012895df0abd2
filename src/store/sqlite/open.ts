/**
 * The embedded store: one SQLite file in WAL mode. The server is the only writer; `service-fs` and
 * other readers may open the same file at the same time (WAL lets them read while it writes).
 * synchronous=FULL makes every acknowledged commit survive a crash of the machine, not just of the
 * process.
 */
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from '../schema.js';
import type { Store } from '../store.js';

export interface SqliteOptions {
  /** Refuse to create the file (readers such as service-fs). */
  mustExist?: boolean;
}

export const SQLITE_PRAGMAS = ['journal_mode = WAL', 'synchronous = FULL', 'busy_timeout = 5000', 'foreign_keys = ON'];

export function openSqliteStore(file: string, options: SqliteOptions = {}): Store {
  const connection = new BetterSqlite3(file, { fileMustExist: options.mustExist ?? false });
  for (const pragma of SQLITE_PRAGMAS) connection.pragma(pragma);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: connection }) });
  return {
    db,
    dialect: 'sqlite',
    location: file,
    close: () => db.destroy(),
  };
}
