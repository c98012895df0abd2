/**
 * Runs the background jobs on the one server the store elects (SPEC §1), and reports the role in
 * /readyz and /metrics. Jobs: the ledger checkpoint signer, the scheduler, the silent-node sweep, the
 * usage audit, and on PostgreSQL the rate-log and nonce-record sweeps.
 */
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { BackgroundWork, type BackgroundJob } from '../control/background.js';
import { LedgerProblemError, signPendingCheckpoint } from '../control/checkpoints.js';
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

export function backgroundJobs(deps: RouteDeps, log: FastifyBaseLogger): BackgroundJob[] {
  const jobs: BackgroundJob[] = [];
  const signer = deps.ledgerSigner;
  if (signer) {
    // Within a second of new entries (SPEC §8), and only over entries checked since the last head.
    jobs.push({ name: 'checkpoint-signer', everyMs: 250, run: () => signAndRemember(deps, signer, log) });
  }
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
 * One turn of the signer: a new checkpoint becomes this server's verified head and its ledger.state.
 * When the ledger does not extend what it verified, the server refuses from then on, as after a
 * failed start-up check, and signs nothing more.
 */
async function signAndRemember(deps: RouteDeps, signer: NonNullable<RouteDeps['ledgerSigner']>, log: FastifyBaseLogger): Promise<void> {
  if (deps.ledgerProblem) return;
  try {
    const signed = await signPendingCheckpoint(deps.store, signer, deps.clock, deps.verifiedHead);
    if (!signed) return;
    deps.verifiedHead = { size: signed.size, root: signed.root };
    if (deps.ledgerStateDir) writeLedgerState(deps.ledgerStateDir, signed);
  } catch (error) {
    if (!(error instanceof LedgerProblemError)) throw error;
    deps.ledgerProblem = error.problem;
    log.error({ bad_index: error.problem.index }, ledgerRefusal(error.problem).message);
  }
}

/** Starts the election; returns the current role and the function that stops everything. */
export function startBackground(deps: RouteDeps, log: FastifyBaseLogger, registry: Registry): { role: () => BackgroundRole; stop: () => Promise<void> } {
  const runs = new Counter({ name: 'ppn_background_runs_total', help: 'Completed background job runs', labelNames: ['job'], registers: [registry] });
  const leaderGauge = new Gauge({ name: 'ppn_background_leader', help: '1 while this server runs the background work', registers: [registry] });
  const work = new BackgroundWork(backgroundJobs(deps, log), {
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
