/** What every command shares: opening the data directory's store, and failing with a clear message. */
import { existsSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { makeIdSource, systemClock } from '../clock.js';
import type { ControlDeps } from '../control/context.js';
import { sqliteFile } from '../config/data-dir.js';
import { openPostgresStore } from '../store/postgres/open.js';
import { openSqliteStore } from '../store/sqlite/open.js';
import { migrateStore, type Store } from '../store/store.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
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
    throw new CliError(`cannot prepare the store at ${store.location}: ${(error as Error).message}`);
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

export function parsePositiveInt(name: string, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 1 to ${max}`);
    return n;
  };
}

/** Runs a command's action, turning errors into a message on stderr and an exit code. */
export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message}\n`);
    process.exitCode = error instanceof CliError ? error.exitCode : 1;
  }
}
