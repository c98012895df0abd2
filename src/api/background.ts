/**
 * Runs the background jobs on the one server the store elects (SPEC §1), and reports the role in
 * /readyz and /metrics. Jobs: the ledger checkpoint signer, and on PostgreSQL the rate-log sweep;
 * the node scheduler and the stale-node sweep join this list as they are built.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { BackgroundWork, type BackgroundJob } from '../control/background.js';
import { signPendingCheckpoint } from '../control/checkpoints.js';
import { sweepRateEvents } from '../store/rate-events.js';
import type { BackgroundRole, RouteDeps } from './deps.js';

export function backgroundJobs(deps: RouteDeps): BackgroundJob[] {
  const jobs: BackgroundJob[] = [];
  const signer = deps.ledgerSigner;
  if (signer) {
    // Within a second of new entries (SPEC §8).
    jobs.push({ name: 'checkpoint-signer', everyMs: 250, run: async () => void (await signPendingCheckpoint(deps.store, signer, deps.clock)) });
  }
  if (deps.store.dialect === 'postgres') {
    jobs.push({ name: 'rate-events-sweep', everyMs: 1000, run: async () => void (await sweepRateEvents(deps.store.db, deps.clock.now())) });
  }
  return jobs;
}

/** Starts the election; returns the current role and the function that stops everything. */
export function startBackground(deps: RouteDeps, log: FastifyBaseLogger, registry: Registry): { role: () => BackgroundRole; stop: () => Promise<void> } {
  const runs = new Counter({ name: 'ppn_background_runs_total', help: 'Completed background job runs', labelNames: ['job'], registers: [registry] });
  const leaderGauge = new Gauge({ name: 'ppn_background_leader', help: '1 while this server runs the background work', registers: [registry] });
  const work = new BackgroundWork(backgroundJobs(deps), {
    ran: (job) => runs.inc({ job }),
    failed: (job, error) => log.warn({ err: error, job }, 'background job failed'),
  });
  let leader = false;
  const stopElection = deps.store.electLeader((isLeader) => {
    leader = isLeader;
    leaderGauge.set(isLeader ? 1 : 0);
    if (isLeader) work.start();
    else work.stop();
    log.info({ leader: isLeader }, isLeader ? 'this server now runs the background work' : 'this server no longer runs the background work');
  });
  return {
    role: () => (leader ? 'leader' : 'standby'),
    stop: async () => {
      work.stop();
      await stopElection();
    },
  };
}
