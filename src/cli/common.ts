/** What every command shares: opening the data directory's store, and failing with a clear message. */
import { existsSync } from 'node:fs';
import { makeIdSource, systemClock } from '../clock.js';
import type { ControlDeps } from '../control/context.js';
import { databaseUrlFile, rememberedDatabaseUrl, sqliteFile } from '../config/data-dir.js';
import { openPostgresStore, redactUrl } from '../store/postgres/open.js';
import { openSqliteStore } from '../store/sqlite/open.js';
import { migrateStore, type Store } from '../store/store.js';
import { CliError } from './command-line.js';

// Every command's errors and argument parsers live in command-line.ts, which ppn uses without the store.
export { CliError, parsePositiveInt, runCli } from './command-line.js';

/** A PostgreSQL URL and where it came from, so that every message about reaching it can say. */
export interface DatabaseUrl {
  url: string;
  /** e.g. "from --database-url" */
  source: string;
}

/**
 * Where the data directory's state lives: --database-url, else PPN_DATABASE_URL, else the URL an
 * earlier `serve` remembered in <data-dir>/database.url; undefined means the directory's SQLite
 * file. An empty --database-url means SQLite whatever else is set (and `serve` then forgets the
 * remembered URL). Anything but a postgres:// or postgresql:// URL is refused here, before it is
 * used or remembered.
 */
export function resolveDatabaseUrl(dataDir: string, option: string | undefined): DatabaseUrl | undefined {
  if (option === '') return undefined;
  const remembered = rememberedDatabaseUrl(dataDir);
  const chosen: DatabaseUrl | undefined =
    option !== undefined
      ? { url: option, source: 'from --database-url' }
      : process.env.PPN_DATABASE_URL
        ? { url: process.env.PPN_DATABASE_URL, source: 'from PPN_DATABASE_URL' }
        : remembered !== undefined
          ? { url: remembered, source: `from ${databaseUrlFile(dataDir)}, remembered by an earlier serve` }
          : undefined;
  if (chosen && !/^postgres(ql)?:\/\//i.test(chosen.url)) {
    // Only the scheme is shown: the rest may hold a password.
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(chosen.url)?.[1];
    throw new CliError(
      `the database URL ${chosen.source} is ${scheme ? `a ${scheme}: URL` : 'not a URL'}; only PostgreSQL is supported ` +
        '(postgres://USER:PASSWORD@HOST:PORT/DATABASE or postgresql://...). Leave it out to keep the state in the data ' +
        'directory\'s SQLite file; serve --database-url "" forgets a remembered one',
      2,
    );
  }
  return chosen;
}

/** Socket and name-lookup failures, and PostgreSQL's connection (08), authorisation (28) and missing-database (3D000) errors. */
const CONNECTION_ERROR = /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ERR_INVALID_URL|08...|28...|3D000)$/;

/**
 * Runs `work` against the chosen store. When that is PostgreSQL and it cannot be reached, the error
 * says which database (password hidden) and where its URL came from, so a wrong remembered URL is
 * found at once.
 */
export async function withDatabaseSource<T>(database: DatabaseUrl | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    const reason = database ? connectionFailure(error) : undefined;
    if (reason === undefined) throw error;
    throw new CliError(`cannot reach the PostgreSQL database ${redactUrl(database!.url)} (the URL ${database!.source}): ${reason}`);
  }
}

/** The reason when `error`, or an error it wraps, is a failure to connect; otherwise undefined. */
function connectionFailure(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_ERROR.test(code)) {
      // Node reports a refused connection to every address of a name as an AggregateError with no message.
      const inner = e instanceof AggregateError ? e.errors.map((x: Error) => x.message).join('; ') : '';
      return e.message || inner || code;
    }
  }
  return undefined;
}

/**
 * Opens (migrating it) the store a writer uses: PostgreSQL when a URL is given, else the data
 * directory's SQLite file. Nothing here touches the ledger: the server's start-up check runs on
 * what is stored before anything extends it (src/api/app.ts).
 */
export async function openWritableStore(dataDir: string, databaseUrl?: string): Promise<Store> {
  const store = databaseUrl ? openPostgresStore(databaseUrl) : openSqliteStore(sqliteFile(dataDir));
  try {
    await migrateStore(store);
  } catch (error) {
    await store.close();
    throw new CliError(`cannot prepare the store at ${store.location}: ${(error as Error).message}`, 1, { cause: error });
  }
  return store;
}

/** Opens an existing store for reading; never creates one. */
export function openExistingStore(dataDir: string, databaseUrl?: string): Store {
  if (databaseUrl) return openPostgresStore(databaseUrl);
  const file = sqliteFile(dataDir);
  if (!existsSync(file)) throw new CliError(`no ledger at ${file}: is --data-dir (or PPN_DATA_DIR) right?`);
  return openSqliteStore(file, { mustExist: true });
}

export function controlDeps(store: Store): ControlDeps {
  return { store, clock: systemClock, ids: makeIdSource(systemClock) };
}
