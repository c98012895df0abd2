/**
 * Runs the background jobs on the one server the store elects (SPEC §1), and reports the role in
 * /readyz and /metrics. Jobs: the ledger integrator (which also signs checkpoints), the scheduler,
 * the silent-node sweep, the usage audit, and on PostgreSQL the rate-log and nonce-record sweeps.
 */
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { BackgroundWork, type BackgroundJob } from '../control/background.js';
import { integratePending, LedgerProblemError, signCheckpoint } from '../control/checkpoints.js';
import { ledgerRefusal } from '../control/ledger-check.js';
import { writeLedgerState } from '../config/ledger-state.js';
import { sweepSilentNodes } from '../control/nodes.js';
import { scheduleOnce } from '../control/scheduler.js';
import { sweepRateEvents } from '../store/rate-events.js';
import { sweepRequestNonces } from '../store/request-nonces.js';
import { auditUsage, type UsageAlarms } from '../control/usage-audit.js';
import type { BackgroundRole, RouteDeps } from './deps.js';
import { usageDriftGauge } from './metrics.js';

/** How often the leader audits the stored usage against the VM rows (and once when it starts leading). */
export const USAGE_AUDIT_MS = 60_000;

/** The job that integrates sequenced entries and signs checkpoints; woken after local writes. */
export const LEDGER_JOB = 'ledger-integrator';
/** How often the integrator looks for entries other servers (replicas, CLI commands) sequenced. */
const INTEGRATE_POLL_MS = 150;
/** Checkpoints are signed at most this often, and within about this long of a new entry (SPEC §8). */
export const CHECKPOINT_INTERVAL_MS = 1000;

export function backgroundJobs(deps: RouteDeps, log: FastifyBaseLogger, wake: (job: string) => void): BackgroundJob[] {
  const jobs: BackgroundJob[] = [];
  jobs.push(ledgerJob(deps, log, () => wake(LEDGER_JOB)));
  jobs.push({ name: 'scheduler', everyMs: 1000, run: async () => void (await scheduleOnce(deps, { cpuOvercommit: deps.cpuOvercommit })) });
  jobs.push({ name: 'silent-node-sweep', everyMs: 2000, run: async () => void (await sweepSilentNodes(deps, deps.heartbeatIntervalS)) });
  const alarms = usageAlarms(deps, log);
  jobs.push({ name: 'usage-audit', everyMs: USAGE_AUDIT_MS, atStart: true, run: async () => void (await auditUsage(deps.store, alarms)) });
  if (deps.store.dialect === 'postgres') {
    jobs.push({ name: 'rate-events-sweep', everyMs: 1000, run: async () => void (await sweepRateEvents(deps.store.db, deps.clock.now())) });
    jobs.push({ name: 'request-nonces-sweep', everyMs: 5000, run: async () => void (await sweepRequestNonces(deps.store.db, deps.clock.now())) });
  }
  return jobs;
}

/** The usage audit's findings: error lines, the public drift gauge and the per-tenant one. */
function usageAlarms(deps: RouteDeps, log: FastifyBaseLogger): UsageAlarms {
  const rows = usageDriftGauge(deps.metrics);
  return {
    error: (details, message) => log.error(details, message),
    drift: (rowsByTenant) => {
      rows.set([...rowsByTenant.values()].reduce((sum, n) => sum + n, 0));
      deps.tenantMetrics.usageDrifted(rowsByTenant);
    },
  };
}

/**
 * The integrator: each turn adds what was sequenced to the tree (in batches, src/store/ledger-tree.ts),
 * then, with a ledger key, signs a checkpoint when the tree grew and the last one is at least
 * CHECKPOINT_INTERVAL_MS old; a turn too soon for that wakes the job again when it is due, so an
 * entry waits at most about that long. A new checkpoint becomes this server's verified head and its
 * ledger.state. When the ledger does not extend what it verified, the server refuses from then on,
 * as after a failed start-up check, and neither integrates nor signs anything more.
 */
function ledgerJob(deps: RouteDeps, log: FastifyBaseLogger, wake: () => void): BackgroundJob {
  let lastSigned = -Infinity;
  let dueTimer: NodeJS.Timeout | undefined;
  const turn = async (): Promise<void> => {
    await integratePending(deps.store);
    const signer = deps.ledgerSigner;
    if (!signer) return;
    const wait = lastSigned + CHECKPOINT_INTERVAL_MS - performance.now();
    if (wait > 0) {
      dueTimer ??= setTimeout(() => {
        dueTimer = undefined;
        wake();
      }, wait).unref();
      return;
    }
    const started = performance.now();
    const signed = await signCheckpoint(deps.store, signer, deps.clock, deps.verifiedHead);
    if (!signed) return;
    lastSigned = started;
    deps.verifiedHead = { size: signed.size, root: signed.root };
    if (deps.ledgerStateDir) writeLedgerState(deps.ledgerStateDir, signed);
  };
  return {
    name: LEDGER_JOB,
    everyMs: INTEGRATE_POLL_MS,
    // A new leader integrates what the last one left sequenced at once.
    atStart: true,
    run: async () => {
      if (deps.ledgerProblem) return;
      try {
        await turn();
      } catch (error) {
        if (!(error instanceof LedgerProblemError)) throw error;
        deps.ledgerProblem = error.problem;
        log.error({ bad_index: error.problem.index }, ledgerRefusal(error.problem).message);
      }
    },
  };
}

/** Starts the election; returns the current role and the function that stops everything. */
export function startBackground(
  deps: RouteDeps,
  log: FastifyBaseLogger,
  registry: Registry,
): { role: () => BackgroundRole; wake: (job: string) => void; stop: () => Promise<void> } {
  const runs = new Counter({ name: 'ppn_background_runs_total', help: 'Completed background job runs', labelNames: ['job'], registers: [registry] });
  const leaderGauge = new Gauge({ name: 'ppn_background_leader', help: '1 while this server runs the background work', registers: [registry] });
  const work: BackgroundWork = new BackgroundWork(
    backgroundJobs(deps, log, (job) => work.wake(job)),
    {
      ran: (job) => runs.inc({ job }),
      failed: (job, error) => log.warn({ err: error, job }, 'background job failed'),
    },
  );
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
    wake: (job) => work.wake(job),
    stop: async () => {
      work.stop();
      await stopElection();
    },
  };
}
