/**
 * Group commit: write transactions that arrive together share one database transaction and one
 * durable COMMIT, so one fsync is paid per batch rather than per request (docs/design/store.md,
 * "Group commit"). Each caller's work runs in a savepoint of its own: one that throws rolls back
 * alone and gets its own error, the others go on. Nobody is answered before the COMMIT returns,
 * and a failed COMMIT fails everyone in the batch, so an answered write is always a durable one.
 */
import { CompiledQuery, type Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import { lockLedger } from './ledger.js';
import type { Database, Db } from './schema.js';

/** More than this many waiting writes are split over several batches, bounding a batch's latency. */
export const MAX_BATCH = 256;

/**
 * A batch that has run this long commits with the writes it has run, and the rest go first into the
 * next one. It bounds how long a batch holds its locks: on PostgreSQL the ledger lock, which the other
 * replicas' batches wait for under lock_timeout. Well past the cost of the one COMMIT it amortises.
 */
export const BATCH_BUDGET_MS = 50;

interface Pending {
  work: (trx: Db) => Promise<unknown>;
  settle: (outcome: { ok: true; value: unknown } | { ok: false; error: unknown }) => void;
}

interface Batcher {
  queue: Pending[];
  running: boolean;
  commits: number;
  /** Writes answered by those commits (succeeded or failed alone in a committed batch). */
  writes: number;
  budgetMs: number;
}

/** The batch's own statements, compiled once: they run for every write. */
const BEGIN = CompiledQuery.raw('begin');
const BEGIN_IMMEDIATE = CompiledQuery.raw('begin immediate');
const COMMIT = CompiledQuery.raw('commit');
const ROLLBACK = CompiledQuery.raw('rollback');
const SAVEPOINT = CompiledQuery.raw('savepoint ppn_write');
const RELEASE = CompiledQuery.raw('release savepoint ppn_write');
const ROLLBACK_TO = CompiledQuery.raw('rollback to savepoint ppn_write');

const batchers = new WeakMap<Kysely<Database>, Batcher>();

function batcherOf(db: Kysely<Database>): Batcher {
  let batcher = batchers.get(db);
  if (!batcher) {
    batcher = { queue: [], running: false, commits: 0, writes: 0, budgetMs: BATCH_BUDGET_MS };
    batchers.set(db, batcher);
  }
  return batcher;
}

/** What a store's batcher has done, for tests and metrics: writes ÷ commits is the mean batch size. */
export function groupCommitStats(db: Kysely<Database>): { commits: number; writes: number } {
  const batcher = batchers.get(db);
  return { commits: batcher?.commits ?? 0, writes: batcher?.writes ?? 0 };
}

/** Changes the time budget of a store's batches (tests that need a batch not to be cut on a slow machine). */
export function setBatchBudget(db: Kysely<Database>, budgetMs: number): void {
  batcherOf(db).budgetMs = budgetMs;
}

/**
 * Runs `work` in the next batch of `db`'s batcher and resolves once that batch has committed. A batch
 * starts once the event loop's current turn is over, with every write queued by then; writes arriving
 * while a batch runs wait for the next one, which starts as soon as the running one ends. `work` must
 * not itself call this (it would wait for its own batch).
 */
export function runInBatch<T>(db: Kysely<Database>, dialect: Dialect, work: (trx: Db) => Promise<T>): Promise<T> {
  const batcher = batcherOf(db);
  return new Promise<T>((resolve, reject) => {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the write's own error, passed on exactly as it was thrown
    batcher.queue.push({ work, settle: (outcome) => (outcome.ok ? resolve(outcome.value as T) : reject(outcome.error)) });
    if (batcher.running) return;
    // The batch starts after the event loop's current turn, not at once: every request whose bytes
    // arrived in this turn reaches the queue first. A synchronous driver (better-sqlite3) would
    // otherwise run a whole batch, COMMIT included, inside the first request's turn, alone.
    batcher.running = true;
    setImmediate(() => void drain(db, dialect, batcher));
  });
}

async function drain(db: Kysely<Database>, dialect: Dialect, batcher: Batcher): Promise<void> {
  try {
    while (batcher.queue.length > 0) await runBatch(db, dialect, batcher);
  } finally {
    batcher.running = false;
  }
}

/**
 * One batch: BEGIN, a savepoint per write, one COMMIT, then every caller is answered. The batch is
 * taken from the queue only once the transaction is open (and on PostgreSQL the ledger lock held),
 * so writes that arrive meanwhile join it.
 */
async function runBatch(db: Kysely<Database>, dialect: Dialect, batcher: Batcher): Promise<void> {
  let batch: Pending[] = [];
  const outcomes: Parameters<Pending['settle']>[0][] = [];
  try {
    await db.connection().execute(async (connection) => {
      await openTransaction(connection, dialect);
      batch = batcher.queue.splice(0, MAX_BATCH);
      try {
        const started = performance.now();
        for (const pending of batch) {
          if (outcomes.length > 0 && performance.now() - started > batcher.budgetMs) break;
          outcomes.push(await runInSavepoint(connection, pending.work));
        }
        batcher.queue.unshift(...batch.splice(outcomes.length));
        await connection.executeQuery(COMMIT);
      } catch (error) {
        // The transaction is lost (a savepoint could not be rolled back, or COMMIT failed): if the
        // failure ended it already, rollback fails too, and the first error is the one to report.
        await connection.executeQuery(ROLLBACK).catch(() => undefined);
        throw error;
      }
    });
  } catch (error) {
    // Nothing of this batch is durable: nobody in it may be told otherwise. When the transaction could
    // not even be opened (the store is busy or unreachable), the writes waiting for it fail alike.
    if (batch.length === 0) batch = batcher.queue.splice(0, MAX_BATCH);
    for (const pending of batch) pending.settle({ ok: false, error });
    return;
  }
  batcher.commits += 1;
  batcher.writes += batch.length;
  batch.forEach((pending, i) => pending.settle(outcomes[i]!));
}

/**
 * SQLite: BEGIN IMMEDIATE takes the write lock up front. A deferred transaction that reads and then
 * writes can fail at once with SQLITE_BUSY_SNAPSHOT when another process (e.g. `admin-token`) wrote
 * in between; an immediate one waits its turn under busy_timeout instead.
 *
 * PostgreSQL: the ledger lock is taken first, before any tenant row lock. A batch takes the row locks
 * of several tenants one after the other and holds them all to its COMMIT; were the ledger lock taken
 * after them, as a lone transaction does, a batch holding the ledger lock and waiting for tenant B
 * could face another replica's batch holding B and waiting for the ledger lock: a deadlock. Taken
 * first, it orders the batches of all replicas, and no batch ever waits for a row lock another holds.
 */
async function openTransaction(connection: Db, dialect: Dialect): Promise<void> {
  if (dialect === 'sqlite') {
    await connection.executeQuery(BEGIN_IMMEDIATE);
    return;
  }
  await connection.executeQuery(BEGIN);
  try {
    await lockLedger(connection, dialect);
  } catch (error) {
    await connection.executeQuery(ROLLBACK).catch(() => undefined);
    throw error;
  }
}

/**
 * Runs one write in a savepoint. Its own failure rolls back to the savepoint and becomes its answer;
 * a failure to roll back means the transaction itself is gone, which fails the whole batch.
 */
async function runInSavepoint(connection: Db, work: Pending['work']): Promise<Parameters<Pending['settle']>[0]> {
  await connection.executeQuery(SAVEPOINT);
  try {
    const value = await work(connection);
    await connection.executeQuery(RELEASE);
    return { ok: true, value };
  } catch (error) {
    await connection.executeQuery(ROLLBACK_TO);
    await connection.executeQuery(RELEASE);
    return { ok: false, error };
  }
}
