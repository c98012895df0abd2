/**
 * The replica's state on /metrics, read at scrape time: the ledger's size (entries sequenced, entries
 * in the tree), its newest signed checkpoint (size and age), the start-up check of the ledger (the
 * state /readyz reports, and its progress), whether this replica leads the background work, and its
 * group commit (commits, and the writes they carried), and how its heartbeats were answered (from
 * memory or through the store). None of it names a tenant, so it is in the
 * public registry. The ledger's figures are the store's, the same on every replica; the check, the
 * leadership and the commits are this replica's own.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { latestCheckpoint } from '../store/checkpoints.js';
import { groupCommitStats } from '../store/group-commit.js';
import { ledgerEnds } from '../store/ledger-tree.js';
import type { RouteDeps } from './deps.js';

/** The states of `ppn_ledger_state`, one series each, 1 for the current one. */
export const LEDGER_STATES = ['verifying', 'verified', 'unverified'] as const;

/** Registers the gauges on `registry`; returns the function that reads them afresh, for each scrape. */
export function registerReplicaMetrics(registry: Registry, deps: RouteDeps, log: FastifyBaseLogger): () => Promise<void> {
  const registers = [registry];
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
  const sequenced = gauge('ppn_ledger_entries_sequenced', 'Ledger entries stored (each has its index)');
  const integrated = gauge('ppn_ledger_entries_integrated', "Ledger entries in the Merkle tree (the integrator's progress)");
  const checkpointSize = gauge('ppn_ledger_checkpoint_size', 'Tree size of the newest signed checkpoint (0: none yet)');
  const checkpointAge = gauge('ppn_ledger_checkpoint_age_seconds', 'Seconds since the newest signed checkpoint was signed (absent: none yet)');
  const state = gauge('ppn_ledger_state', "This replica's start-up check of the ledger, as /readyz says it: 1 for the current state", ['state']);
  const progress = gauge('ppn_ledger_check_progress', 'Share of the entries the start-up check has checked (1 once it has ended)');
  const checked = gauge('ppn_ledger_check_checked_entries', 'Entries the running start-up check has checked (absent once it has ended)');
  const total = gauge('ppn_ledger_check_total_entries', 'Entries the running start-up check has to check (absent once it has ended)');
  const leader = gauge('ppn_leader', '1 while this replica is the elected leader running the background work, else 0');
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });
  const commits = counter('ppn_store_commits_total', 'Write transactions this replica committed (group commit: one per batch)');
  const writes = counter('ppn_store_committed_writes_total', 'Writes those commits carried (÷ ppn_store_commits_total: the mean batch size)');
  const heartbeats = counter(
    'ppn_heartbeats_total',
    'Node heartbeats this replica answered: answered="memory" (quiet: no statement), answered="store" (read and written in a transaction)',
    ['answered'],
  );
  for (const answered of ['memory', 'store']) heartbeats.inc({ answered }, 0);
  // The store and the heartbeat recorder count since they started; the counters are raised by what
  // they counted since the last scrape.
  const counted = { commits: 0, writes: 0, memory: 0, store: 0 };
  const fromStore = [sequenced, integrated, checkpointSize, checkpointAge];

  return async () => {
    const current = deps.ledgerProblem ? 'unverified' : deps.ledgerVerifying ? 'verifying' : 'verified';
    for (const name of LEDGER_STATES) state.set({ state: name }, name === current ? 1 : 0);
    const verifying = deps.ledgerVerifying;
    if (verifying) {
      checked.set(verifying.checked);
      total.set(verifying.total);
      progress.set(verifying.total === 0 ? 0 : verifying.checked / verifying.total);
    } else {
      checked.remove();
      total.remove();
      progress.set(1);
    }
    leader.set(deps.backgroundRole() === 'leader' ? 1 : 0);
    const batches = groupCommitStats(deps.store.db);
    commits.inc(batches.commits - counted.commits);
    writes.inc(batches.writes - counted.writes);
    Object.assign(counted, batches);
    const { memory, store } = deps.heartbeats.answered;
    heartbeats.inc({ answered: 'memory' }, memory - counted.memory);
    heartbeats.inc({ answered: 'store' }, store - counted.store);
    Object.assign(counted, { memory, store });
    try {
      const [ends, checkpoint] = await Promise.all([ledgerEnds(deps.store.db), latestCheckpoint(deps.store.db)]);
      sequenced.set(ends.lastEntry + 1);
      integrated.set(ends.lastLeaf + 1);
      checkpointSize.set(checkpoint?.size ?? 0);
      if (!checkpoint) checkpointAge.remove();
      else checkpointAge.set(Math.max(0, (deps.clock.now() - Date.parse(checkpoint.created_at)) / 1000));
    } catch (error) {
      // The process's own metrics are still worth answering with; stale ledger figures are not.
      for (const stale of fromStore) stale.remove();
      log.warn({ err: error }, 'metrics: could not read the ledger from the store');
    }
  };
}
