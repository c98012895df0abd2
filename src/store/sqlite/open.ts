/**
 * The embedded store: one SQLite file in WAL mode. The server is the only writer; `service-fs` and
 * other readers may open the same file at the same time (WAL lets them read while it writes).
 * synchronous=FULL makes every acknowledged commit survive a crash of the machine, not just of the
 * process. The files are 0600 whatever the umask: they hold the tenants, token metadata and the ledger.
 */
import { chmodSync, closeSync, existsSync, openSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { ARRAY_ROWS } from '../rows.js';
import type { Database } from '../schema.js';
import type { Store } from '../store.js';

export interface SqliteOptions {
  /** Refuse to create the file (readers such as service-fs). */
  mustExist?: boolean;
}

export const SQLITE_PRAGMAS = ['journal_mode = WAL', 'synchronous = FULL', 'busy_timeout = 5000', 'foreign_keys = ON'];

export function openSqliteStore(file: string, options: SqliteOptions = {}): Store {
  const mustExist = options.mustExist ?? false;
  // SQLite creates -wal and -shm with the main file's mode, so the main file is made 0600 first.
  if (!mustExist) closeSync(openSync(file, 'a', 0o600));
  const connection = new BetterSqlite3(file, { fileMustExist: mustExist });
  for (const pragma of SQLITE_PRAGMAS) connection.pragma(pragma);
  // A writer also tightens files left looser by an earlier version.
  if (!mustExist) for (const path of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(path)) chmodSync(path, 0o600);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(connection) }) });
  return {
    db,
    dialect: 'sqlite',
    location: file,
    // One server per data directory (the data-directory lock), so it leads at once.
    electLeader: (onChange) => {
      onChange(true);
      return async () => onChange(false);
    },
    listen: () => async () => undefined,
    close: () => db.destroy(),
  };
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Kysely prepares every query afresh; preparing costs as much as running a small query. The queries
 * are a fixed set of shapes, so keep the prepared statements (a bounded LRU by SQL text). A query
 * marked ARRAY_ROWS returns its rows as arrays (store/rows.ts).
 */
function withStatementCache(connection: BetterSqlite3.Database) {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => connection.close(),
    prepare(sql: string) {
      let statement = statements.get(sql);
      if (statement) {
        statements.delete(sql);
      } else {
        statement = connection.prepare(sql);
        if (sql.startsWith(ARRAY_ROWS)) statement.raw(true);
        if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      }
      statements.set(sql, statement);
      return statement;
    },
  };
}
