/**
 * The store: one interface over SQLite (embedded default) and PostgreSQL (scale-out). Each backend lives
 * in its own folder and is the only code that imports its driver; everything else talks Kysely
 * through the query modules beside this file.
 */
import { sql, type Kysely } from 'kysely';
import { PpnError } from '../errors.js';
import type { Dialect } from './dialect.js';
import { runInBatch } from './group-commit.js';
import { migrateSchema, type SchemaChange } from './migrations.js';
import type { Database, Db } from './schema.js';

export type { Dialect } from './dialect.js';

export type LeaderCallback = (leader: boolean) => void;
export type StopElection = () => Promise<void>;

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** A short description for logs, e.g. the database file. */
  readonly location: string;
  /**
   * Takes part in choosing the one server that runs background work, calling `onChange` as this
   * server gains or loses that role. SQLite has one server, which leads at once; PostgreSQL
   * replicas contend for an advisory lock.
   */
  electLeader(onChange: LeaderCallback): StopElection;
  /**
   * Calls `onNotify` soon after another server commits a change announced on `channel` (see
   * announce). A hint only: a missed one must be caught by polling. SQLite has no other servers.
   */
  listen(channel: Channel, onNotify: () => void): () => Promise<void>;
  close(): Promise<void>;
}

/** Channels on which servers announce committed changes to each other. */
export type Channel = 'ppn_revocations' | 'ppn_keys';

/** Announces a change on `channel`, delivered to listeners when `trx` commits (PostgreSQL NOTIFY). */
export async function announce(trx: Db, dialect: Dialect, channel: Channel): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_notify(${channel}, '')`.execute(trx);
}

/** Migrates the store to this release's schema, or accepts a newer additive one (migrations.ts). */
export async function migrateStore(store: Store, changes?: Record<string, SchemaChange>): Promise<void> {
  await migrateSchema(store.db, store.dialect, changes);
}

/**
 * Runs `work` in one transaction. State changes and their ledger entries go through here together,
 * so either both commit or neither does (SPEC §8). Writes that arrive together share one transaction
 * and one durable commit, each in a savepoint of its own (group-commit.ts); the promise settles only
 * after that commit, with `work`'s own result or error.
 */
export async function inTransaction<T>(store: Store, work: (trx: Db) => Promise<T>): Promise<T> {
  try {
    return await runInBatch(store.db, store.dialect, work);
  } catch (error) {
    throw translateStoreError(error);
  }
}

/** Driver errors that mean "the store cannot be used now" become 503; everything else passes on. */
export function translateStoreError(error: unknown): unknown {
  if (error instanceof PpnError) return error;
  const code = (error as { code?: unknown })?.code;
  // SQLite: busy past busy_timeout, I/O or disk full. PostgreSQL SQLSTATEs: connection exceptions
  // (08), insufficient resources (53), lock_timeout (55P03), cancelled or shutting down (57). Node:
  // the database server cannot be reached.
  const unavailable =
    typeof code === 'string' &&
    (/^SQLITE_(BUSY|IOERR|FULL|CANTOPEN)/.test(code) || /^(08...|53...|55P03|57014|57P0.)$/.test(code) || /^E(CONNREFUSED|CONNRESET|TIMEDOUT|HOSTUNREACH)$/.test(code));
  if (unavailable) {
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
