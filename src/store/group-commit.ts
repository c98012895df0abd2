/**
 * Group commit: write transactions that arrive together share one database transaction and one
 * durable COMMIT, so one fsync is paid per batch rather than per request (docs/design/store.md,
 * "Group commit"). Each caller's work runs in a savepoint of its own: one that throws rolls back
 * alone and gets its own error, the others go on. Nobody is answered before the COMMIT returns,
 * and a failed COMMIT fails everyone in the batch, so an answered write is always a durable one.
 */
import { sql, type Kysely } from 'kysely';
import type { Dialect } from './dialect.js';
import { lockLedger } from './ledger.js';
import type { Database, Db } from './schema.js';

/** More than this many waiting writes are split over several batches, bounding a batch's latency. */
export const MAX_BATCH = 256;

interface Pending {
  work: (trx: Db) => Promise<unknown>;
  settle: (outcome: { ok: true; value: unknown } | { ok: false; error: unknown }) => void;
}

interface Batcher {
  queue: Pending[];
  running: boolean;
  commits: number;
}

const batchers = new WeakMap<Kysely<Database>, Batcher>();

/** What a store's batcher has done, for tests and metrics. */
export function groupCommitStats(db: Kysely<Database>): { commits: number } {
  return { commits: batchers.get(db)?.commits ?? 0 };
}

/**
 * Runs `work` in the next batch of `db`'s batcher and resolves once that batch has committed. A lone
 * write starts at once; writes arriving while a batch runs wait for the next one, which starts as
 * soon as the running one ends. `work` must not itself call this (it would wait for its own batch).
 */
export function runInBatch<T>(db: Kysely<Database>, dialect: Dialect, work: (trx: Db) => Promise<T>): Promise<T> {
  let batcher = batchers.get(db);
  if (!batcher) {
    batcher = { queue: [], running: false, commits: 0 };
    batchers.set(db, batcher);
  }
  return new Promise<T>((resolve, reject) => {
    batcher.queue.push({ work, settle: (outcome) => (outcome.ok ? resolve(outcome.value as T) : reject(outcome.error)) });
    if (!batcher.running) void drain(db, dialect, batcher);
  });
}

async function drain(db: Kysely<Database>, dialect: Dialect, batcher: Batcher): Promise<void> {
  batcher.running = true;
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
        for (const pending of batch) outcomes.push(await runInSavepoint(connection, pending.work));
        await sql`commit`.execute(connection);
      } catch (error) {
        // The transaction is lost (a savepoint could not be rolled back, or COMMIT failed): if the
        // failure ended it already, rollback fails too, and the first error is the one to report.
        await sql`rollback`.execute(connection).catch(() => undefined);
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
    await sql`begin immediate`.execute(connection);
    return;
  }
  await sql`begin`.execute(connection);
  try {
    await lockLedger(connection, dialect);
  } catch (error) {
    await sql`rollback`.execute(connection).catch(() => undefined);
    throw error;
  }
}

/**
 * Runs one write in a savepoint. Its own failure rolls back to the savepoint and becomes its answer;
 * a failure to roll back means the transaction itself is gone, which fails the whole batch.
 */
async function runInSavepoint(connection: Db, work: Pending['work']): Promise<Parameters<Pending['settle']>[0]> {
  await sql`savepoint ppn_write`.execute(connection);
  try {
    const value = await work(connection);
    await sql`release savepoint ppn_write`.execute(connection);
    return { ok: true, value };
  } catch (error) {
    await sql`rollback to savepoint ppn_write`.execute(connection);
    await sql`release savepoint ppn_write`.execute(connection);
    return { ok: false, error };
  }
}
