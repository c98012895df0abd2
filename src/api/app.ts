/**
 * buildApp wires the API together and never listens (src/cli/serve.ts does). Registration order is
 * the order requests meet things: request id → problem mapping → auth/rate limit → routes.
 */
import type { ServerOptions as HttpsOptions } from 'node:https';
import fastifySwagger from '@fastify/swagger';
import { makeIdSource, systemClock, type Clock, type IdSource } from '../clock.js';
import { REFRESH_MS, RevocationList } from '../control/revocations.js';
import { HeartbeatRecorder } from '../control/heartbeats.js';
import { FLUSH_MS, SessionRecorder } from '../control/sessions.js';
import type { Store } from '../store/store.js';
import { entriesSequenced } from '../store/ledger.js';
import type { PlatformKeyring } from '../tokens/keyring.js';
import { LiveKeyring } from '../control/platform-keys.js';
import { LEDGER_JOB, startBackground } from './background.js';
import type { RouteDeps, TypedApp } from './deps.js';
import { registerGiveWay } from './give-way.js';
import { registerAuth } from './plugins/auth.js';
import { createHttpApp } from './http-app.js';
import { answerAgentCalls, type AnswerAgentCall } from './agent-listener/answer.js';
import { rateLimiterFor } from './rate-limiter.js';
import { openNonceRecord } from './nonce-record.js';
import { DEFAULT_MAX_TENANT_LABELS, TenantMetrics, httpMetrics, publicRegistry, registerHttpMetrics, type RecordHttp } from './metrics.js';
import { describeOperation } from './openapi.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { registerTokenRoutes } from './routes/tokens.js';
import { registerSessionRoutes } from './routes/sessions.js';
import { registerVmRoutes } from './routes/vms.js';
import { registerNodeRoutes } from './routes/nodes.js';
import { registerLedgerRoutes } from './routes/ledger.js';
import { registerVersionRoutes } from './routes/version.js';
import { builtConsoleDirectory, registerConsole } from './console.js';
import { takeScopesFromAccessTable } from './routes/access.js';
import { checkLedger, checkLedgerSince, ledgerRefusal, storedEntryCount, type LedgerProblem } from '../control/ledger-check.js';
import { DEFAULT_SCRUB_PAUSE_MS, DEFAULT_SCRUB_RATE, startScrub } from '../control/ledger-scrub.js';
import { EMPTY_HEAD, type LedgerSigner } from '../control/checkpoints.js';
import { readLedgerState, writeLedgerState } from '../config/ledger-state.js';
import type { SignedTreeHead } from '../ledger/checkpoint.js';
import { parseVerifierKey } from '../ledger/note.js';
import { HEARTBEAT_INTERVAL_S } from '../control/nodes.js';
import { DEFAULT_CPU_OVERCOMMIT } from '../control/scheduler.js';
import { VERSION } from '../version.js';

export interface AppOptions {
  store: Store;
  /** A LiveKeyring follows key rotations made elsewhere, as the revocation list follows revocations. */
  keyring: PlatformKeyring | LiveKeyring;
  clock?: Clock;
  ids?: IdSource;
  /** pino options, or false for no logging (tests). */
  logger?: boolean | Record<string, unknown>;
  /** Take part in the leader election and run background work when elected (the server does). */
  runBackgroundWork?: boolean;
  /** How often to write session use and quiet heartbeats (default and least FLUSH_MS: tests set it longer and flush by hand). */
  sessionFlushMs?: number;
  /** How often to re-read revocations made elsewhere (default REFRESH_MS). */
  revocationPollMs?: number;
  /** The ledger's checkpoint signer; without it no checkpoints are signed. */
  ledgerSigner?: LedgerSigner & { verifierKey: string };
  /** How long a client may take to send a whole request, headers and body (default 30 s); then 408. */
  requestTimeoutMs?: number;
  /** Open connections allowed from one client address (default 256); more are answered 429 and closed. */
  maxConnectionsPerAddress?: number;
  /** Distinct tenants the per-tenant metrics name before the rest share "other" (default 1000). */
  maxTenantMetricLabels?: number;
  /**
   * The data directory whose ledger.state remembers the latest checkpoint this server signed or
   * verified (src/config/ledger-state.ts); without it nothing is remembered between starts.
   */
  ledgerStateDir?: string;
  /**
   * Where a SQLite server journals the request-signature nonces it accepts, so that a restart does
   * not forget them (serve: the data directory's nonces/). Without it a restart forgets them.
   */
  nonceJournalDir?: string;
  /** vCPUs the scheduler may place per node CPU (`serve --cpu-overcommit`, default DEFAULT_CPU_OVERCOMMIT). */
  cpuOvercommit?: number;
  /** Seconds between a node's heartbeats (`serve --heartbeat-interval`, default HEARTBEAT_INTERVAL_S). */
  heartbeatIntervalS?: number;
  /**
   * Return before the start-up check of the ledger ends, so the server can listen at once (serve
   * does); /readyz says `ledger_verifying` until it ends. Default: buildApp waits for it.
   */
  checkLedgerInBackground?: boolean;
  /** Run once the start-up check has passed, before /readyz turns ready and the background work starts (serve mints the admin token here). */
  whenLedgerVerified?: () => Promise<void>;
  /** Entries per second the background scrub checks (`serve --scrub-rate`, default DEFAULT_SCRUB_RATE). */
  scrubRatePerSecond?: number;
  /** Pause between two scrub passes (default DEFAULT_SCRUB_PAUSE_MS). */
  scrubPauseMs?: number;
  /** `serve --metrics-token`: /metrics answers only `Authorization: Bearer <this>`, with the per-tenant series. */
  metricsToken?: string;
  /** Serve HTTPS with these options (src/tls/server.ts builds them from `serve --tls-cert --tls-key`). */
  https?: HttpsOptions;
  /** Refuse platform-admin tokens on a connection without a client certificate verified by `https.ca` (`serve --tls-client-ca`). */
  clientCertificateForPlatformAdmin?: boolean;
  /** Proxies (addresses, CIDR blocks) whose X-Forwarded-For gives request.ip; none by default, so the header is ignored. */
  trustProxy?: string[];
  /** The built web console served at /console/ (default: the package's dist/console, src/api/console.ts). */
  consoleDirectory?: string;
}

/** What each built app's start-up check (or, later, its signer or scrub) found wrong with the ledger. */
const ledgerProblems = new WeakMap<TypedApp, () => LedgerProblem | null>();
/** Each built app's start-up check, settled when it has ended (passed or not). */
const ledgerChecks = new WeakMap<TypedApp, Promise<void>>();

/** Each built app's answerer of the agent listener's calls (src/api/agent-listener/). */
const agentCalls = new WeakMap<TypedApp, AnswerAgentCall>();

/** How the agent listener's worker has `app` answer the node's calls it passes on (`serve --agent-listen`). */
export function agentCallsOf(app: TypedApp): AnswerAgentCall {
  const answer = agentCalls.get(app);
  if (!answer) throw new TypeError('not an app buildApp built');
  return answer;
}

/** Each built app's HTTP request metrics, which the agent listener's requests are counted in too. */
const httpRecorders = new WeakMap<TypedApp, RecordHttp>();

/** Counts a request answered elsewhere (the agent listener's port) in `app`'s ppn_http_* metrics. */
export function httpMetricsOf(app: TypedApp): RecordHttp {
  const record = httpRecorders.get(app);
  if (!record) throw new TypeError('not an app buildApp built');
  return record;
}

/** The problem that makes `app` refuse /v1, or null while its ledger holds. */
export function ledgerProblemOf(app: TypedApp): LedgerProblem | null {
  return ledgerProblems.get(app)?.() ?? null;
}

/** Settles when `app`'s start-up check of the ledger has ended, whether or not it passed. */
export function ledgerChecked(app: TypedApp): Promise<void> {
  return ledgerChecks.get(app) ?? Promise.resolve();
}

export async function buildApp(options: AppOptions): Promise<TypedApp> {
  const clock = options.clock ?? systemClock;
  const nonces = openNonceRecord(options.store, clock, options.nonceJournalDir, (error) =>
    app.log.error({ err: error, journal: options.nonceJournalDir }, 'the nonce journal could not be written: signed requests are refused (503) until it can'),
  );
  const deps: RouteDeps = {
    store: options.store,
    keyring: options.keyring,
    clock,
    ids: options.ids ?? makeIdSource(clock),
    revocations: new RevocationList(),
    sessions: new SessionRecorder(),
    heartbeats: new HeartbeatRecorder(),
    limiter: rateLimiterFor(options.store),
    acceptNonce: nonces.accept,
    metrics: publicRegistry(),
    tenantMetrics: new TenantMetrics(options.maxTenantMetricLabels ?? DEFAULT_MAX_TENANT_LABELS),
    backgroundRole: () => 'off',
    ledgerSigner: options.ledgerSigner,
    ledgerProblem: null,
    ledgerVerifying: null,
    verifiedHead: EMPTY_HEAD,
    ledgerStateDir: options.ledgerStateDir,
    cpuOvercommit: options.cpuOvercommit ?? DEFAULT_CPU_OVERCOMMIT,
    heartbeatIntervalS: options.heartbeatIntervalS ?? HEARTBEAT_INTERVAL_S,
  };
  await deps.revocations.refresh(deps.store.db);

  const recordHttp = httpMetrics(deps.metrics);
  const app = createHttpApp({
    logger: options.logger,
    requestTimeoutMs: options.requestTimeoutMs,
    maxConnectionsPerAddress: options.maxConnectionsPerAddress,
    https: options.https,
    trustProxy: options.trustProxy,
    instrument: (app) => registerHttpMetrics(app, recordHttp),
  });
  // Before any route: each takes its scope from its row in routes/access.ts, and a route without a
  // row refuses to build.
  const closeAccessTable = takeScopesFromAccessTable(app);
  app.addHook('onClose', (_app, done) => {
    nonces.close();
    done();
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'PPN control plane', version: VERSION },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: describeOperation,
  });

  const checked = startLedgerCheck(app, deps, options);
  ledgerChecks.set(app, checked);
  if (!options.checkLedgerInBackground) await checked;
  registerGiveWay(app);
  const auth = registerAuth(app, deps, { clientCertificateForPlatformAdmin: options.clientCertificateForPlatformAdmin === true });

  // Revocations made by other replicas reach this one when they announce them (PostgreSQL NOTIFY),
  // and within REFRESH_MS whatever happens to the notification.
  const refresh = () => {
    deps.revocations.refresh(deps.store.db).catch((error: unknown) => app.log.warn({ err: error }, 'revocation refresh failed'));
  };
  const refresher = setInterval(refresh, options.revocationPollMs ?? REFRESH_MS);
  refresher.unref();
  const stopListening = deps.store.listen('ppn_revocations', refresh);
  app.addHook('onClose', async () => {
    clearInterval(refresher);
    await stopListening();
  });
  followKeyChanges(app, deps.store, options.keyring, options.revocationPollMs ?? REFRESH_MS);
  const flushMs = Math.max(FLUSH_MS, options.sessionFlushMs ?? FLUSH_MS);
  flushPeriodically(app, { sessions: () => deps.sessions.flush(deps.store), heartbeats: () => deps.heartbeats.flush(deps.store) }, flushMs);

  registerHealthRoutes(app, deps, { metricsToken: options.metricsToken });
  registerTenantRoutes(app, deps);
  registerTokenRoutes(app, deps);
  registerSessionRoutes(app, deps);
  registerVmRoutes(app, deps);
  const nodes = registerNodeRoutes(app, deps);
  registerLedgerRoutes(app, deps);
  registerVersionRoutes(app);
  await registerConsole(app, options.consoleDirectory ?? builtConsoleDirectory());
  // After the last of the API's routes: register any new route above this line.
  closeAccessTable();
  ledgerProblems.set(app, () => deps.ledgerProblem);
  agentCalls.set(app, answerAgentCalls(deps, auth, nodes, app.log));
  httpRecorders.set(app, recordHttp);
  return app;
}

type FlushKind = 'sessions' | 'heartbeats';
const flushers = new WeakMap<TypedApp, Record<FlushKind | 'both', () => Promise<void>>>();

/** Writes the sessions `app` has aggregated now, as its flusher would within a second (for tests). */
export async function flushSessions(app: TypedApp): Promise<void> {
  await flushers.get(app)?.sessions();
}

/** Writes the quiet heartbeats' times `app` holds now, as its flusher would within a second (for tests). */
export async function flushHeartbeats(app: TypedApp): Promise<void> {
  await flushers.get(app)?.heartbeats();
}

/** Writes both at once, exactly as the flusher's timer does (for tests). */
export async function flushBackgroundWrites(app: TypedApp): Promise<void> {
  await flushers.get(app)?.both();
}

/**
 * Session use and quiet heartbeats reach the store once a second, not once a request, and once
 * more on close, so a server stopped cleanly loses none of them. Both are started in the same turn
 * of the event loop, so group commit writes them in one transaction: one COMMIT (one fsync, which
 * holds the event loop on SQLite) a second, not one for each. Two timers drift apart and paid two.
 */
function flushPeriodically(app: TypedApp, writes: Record<FlushKind, () => Promise<void>>, everyMs: number): void {
  // One flush of each kind at a time: the one on close waits for one the timer started.
  const serial = (write: () => Promise<void>) => {
    let last: Promise<void> = Promise.resolve();
    return () => (last = last.catch(() => undefined).then(write));
  };
  const sessions = serial(writes.sessions);
  const heartbeats = serial(writes.heartbeats);
  const both = async () => {
    const outcomes = await Promise.allSettled([sessions(), heartbeats()]);
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
  };
  flushers.set(app, { sessions, heartbeats, both });
  const flusher = setInterval(() => {
    both().catch((error: unknown) => app.log.warn({ err: error }, 'session and heartbeat flush failed'));
  }, everyMs);
  flusher.unref();
  app.addHook('onClose', async () => {
    clearInterval(flusher);
    await both();
  });
}

/** Key rotations and retirements made elsewhere reach this server the same way as revocations. */
function followKeyChanges(app: TypedApp, store: Store, keyring: PlatformKeyring | LiveKeyring, pollMs: number): void {
  if (!(keyring instanceof LiveKeyring)) return;
  const refresh = () => {
    keyring.refresh().catch((error: unknown) => app.log.warn({ err: error }, 'platform key refresh failed'));
  };
  const refresher = setInterval(refresh, pollMs);
  refresher.unref();
  const stopListening = store.listen('ppn_keys', refresh);
  app.addHook('onClose', async () => {
    clearInterval(refresher);
    await stopListening();
  });
}

/**
 * The start-up check (SPEC §8), on what is stored, before anything repairs or extends it, while the
 * server already answers: /healthz at once, /readyz `ledger_verifying` with its progress until it
 * ends. It checks the entries added since the checkpoint this server remembers in ledger.state
 * (all of them when it remembers none) and the checkpoints signed since (src/control/ledger-check.ts).
 * /v1 is served meanwhile: the check is of what was stored before it began, and nothing signs a
 * checkpoint until it passes, as the checkpoint signer starts only then. On disagreement the server
 * stays up to say so, refusing /v1; the signer and the scrub refuse the same way later if they find one.
 */
function startLedgerCheck(app: TypedApp, deps: RouteDeps, options: AppOptions): Promise<void> {
  app.addHook('onRequest', async (request) => {
    if (deps.ledgerProblem && request.url.startsWith('/v1/') && request.url !== '/v1/version') throw ledgerRefusal(deps.ledgerProblem);
  });
  deps.ledgerVerifying = { checked: 0, total: 0 };
  const closing = new AbortController();
  const stops: (() => Promise<void>)[] = [];
  let wakeIntegrator = (): void => {};
  // A request's ledger entry is committed by the time it is answered: integrate it now, not at the
  // next poll. Only after requests that sequenced one: a heartbeat that changed nothing wakes nothing.
  let sequencedBefore = entriesSequenced();
  app.addHook('onResponse', (_request, _reply, done) => {
    const sequenced = entriesSequenced();
    if (sequenced !== sequencedBefore) {
      sequencedBefore = sequenced;
      wakeIntegrator();
    }
    done();
  });
  // In the background the check begins once the app is ready, and one turn of the event loop later,
  // when a listening server has bound its port: its pages would otherwise compete with the routes'
  // compilation and delay the first answer to /healthz.
  let begin = (): void => {};
  const begun = new Promise<void>((resolve) => (begin = resolve));
  if (options.checkLedgerInBackground) app.addHook('onReady', async () => void setImmediate(begin));
  else begin();
  const checked = begun
    .then(() => checkLedgerAtStart(app, deps, closing.signal))
    .then(async (passed) => {
      if (!passed || closing.signal.aborted) return;
      await options.whenLedgerVerified?.();
      // A ledger that failed its check gets no new checkpoints: signing one would vouch for it.
      if (options.runBackgroundWork) {
        const background = startBackground(deps, app.log, deps.metrics);
        deps.backgroundRole = background.role;
        wakeIntegrator = () => background.wake(LEDGER_JOB);
        stops.push(background.stop, startLedgerScrub(app, deps, options));
      }
    })
    .finally(() => {
      deps.ledgerVerifying = null;
    });
  app.addHook('onClose', async () => {
    closing.abort();
    begin();
    await checked.catch(() => undefined);
    for (const stop of stops) await stop();
  });
  return checked;
}

/**
 * Entries a page of the start-up check reads: requests wait for a page to end, and 1,000 entries are
 * read and hashed in about 10 ms (5,000 held /healthz for 50 ms on a slow machine).
 */
const START_CHECK_PAGE = 1000;

/** The check itself; true when it passed (the verified head is then set and remembered). */
async function checkLedgerAtStart(app: TypedApp, deps: RouteDeps, signal: AbortSignal): Promise<boolean> {
  const refuse = (problem: LedgerProblem, ms: number) => {
    deps.ledgerProblem = problem;
    app.log.error({ bad_index: problem.index, ms }, ledgerRefusal(problem).message);
    return false;
  };
  const started = Date.now();
  const key = deps.ledgerSigner ? parseVerifierKey(deps.ledgerSigner.verifierKey) : undefined;
  const stateDir = key ? deps.ledgerStateDir : undefined;
  let remembered: SignedTreeHead | null;
  try {
    remembered = stateDir ? readLedgerState(stateDir, key!) : null;
  } catch (error) {
    return refuse({ index: 0, what: (error as Error).message }, Date.now() - started);
  }
  // What is stored now; entries appended while the check runs are the signer's to check.
  const end = await storedEntryCount(deps.store.db);
  let reported = 0;
  const progress = (checked: number, total: number) => {
    deps.ledgerVerifying = { checked, total };
    if (checked - reported >= 100_000) {
      reported = checked;
      app.log.info({ checked, total }, 'checking the ledger');
    }
  };
  progress(0, end);
  const result =
    key && remembered
      ? await checkLedgerSince(deps.store, key, remembered, { end, progress, signal, pageSize: START_CHECK_PAGE })
      : { ...(await checkLedger(deps.store, key, { end, progress: (size) => progress(size, end), signal, pageSize: START_CHECK_PAGE })), from: 0 };
  if (signal.aborted) return false;
  const ms = Date.now() - started;
  if (result.problem) return refuse(result.problem, ms);
  deps.verifiedHead = { size: result.size, root: result.root };
  app.log.info({ entries: result.size, from: result.from, checkpoints: result.checkpoints, ms }, 'ledger verified');
  if (result.acceptedRollback !== null) {
    app.log.warn({ index: result.acceptedRollback, from_size: remembered!.size }, 'accepted a rollback recorded by a signed LEDGER_ROLLED_BACK entry');
  }
  if (stateDir && result.latest) {
    if (!remembered) app.log.warn({ size: result.latest.size }, 'no ledger.state: trusting the stored ledger on first use and remembering its latest checkpoint');
    writeLedgerState(stateDir, result.latest);
  }
  return true;
}

/** The leader's background scrub of the history up to the verified head (src/control/ledger-scrub.ts). */
function startLedgerScrub(app: TypedApp, deps: RouteDeps, options: AppOptions): () => Promise<void> {
  if (!deps.ledgerSigner) return async () => {};
  return startScrub({
    store: deps.store,
    key: parseVerifierKey(deps.ledgerSigner.verifierKey),
    ratePerSecond: options.scrubRatePerSecond ?? DEFAULT_SCRUB_RATE,
    pauseMs: options.scrubPauseMs ?? DEFAULT_SCRUB_PAUSE_MS,
    active: () => deps.backgroundRole() === 'leader' && !deps.ledgerProblem,
    verifiedHead: () => deps.verifiedHead,
    found: (problem) => {
      deps.ledgerProblem = problem;
      app.log.error({ bad_index: problem.index }, `the background scrub found a difference: ${ledgerRefusal(problem).message}`);
    },
    passed: (head, ms) => app.log.info({ entries: head.size, ms }, 'the background scrub checked the ledger'),
    failed: (error) => app.log.warn({ err: error }, 'a background scrub pass failed'),
  });
}
