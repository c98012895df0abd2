/** `service-vm-tenant serve`: the API server, on the data directory's SQLite file or on PostgreSQL. */
import { existsSync, readFileSync } from 'node:fs';
import type { Server as TlsServer } from 'node:tls';
import { pino } from 'pino';
import { agentCallsOf, buildApp, httpMetricsOf, ledgerChecked, ledgerProblemOf } from '../api/app.js';
import { startAgentListener, type AgentListener } from '../api/agent-listener/host.js';
import type { TypedApp } from '../api/deps.js';
import type { Store } from '../store/store.js';
import { serverLogStream } from '../api/request-log.js';
import { mintAdminToken, DEFAULT_ADMIN_TOKEN_SECONDS } from '../control/admin-token.js';
import {
  adminTokenFile,
  databaseUrlFile,
  forgetDatabaseUrl,
  initDataDir,
  loadAdminKey,
  loadLedgerSigner,
  lockDataDir,
  nonceJournalDir,
  rememberDatabaseUrl,
  writeLedgerPublicKey,
  writeSecretFile,
} from '../config/data-dir.js';
import { POOL_NICE, lowerThreadPoolPriority } from '../thread-pool-priority.js';
import { readServerTls, reloadOnSighup, type ServerTlsFiles } from '../tls/server.js';
import { preparePlatformKeys } from './keys.js';
import { CliError, controlDeps, openWritableStore, withDatabaseSource, type DatabaseUrl } from './common.js';

export const DEFAULT_LISTEN = '127.0.0.1:9221';
/** What --agent-listen's help and errors suggest: the port beside the API's. */
export const EXAMPLE_AGENT_LISTEN = '0.0.0.0:9222';

export interface ServeOptions {
  dataDir: string;
  /** PostgreSQL; undefined keeps the data directory's SQLite file. Remembered once it opens. */
  database?: DatabaseUrl;
  /** Forget the URL the data directory remembers (--database-url ""). */
  forgetDatabaseUrl?: boolean;
  listen: string;
  /** --agent-listen: also serve the node agents' routes here, from a worker thread (undefined: off). */
  agentListen?: string;
  logLevel: string;
  /** vCPUs the scheduler may place per node CPU. */
  cpuOvercommit?: number;
  /** Seconds between a node's heartbeats, as the server asks them. */
  heartbeatIntervalS?: number;
  /** Entries per second the leader's background scrub of the ledger checks. */
  scrubRate?: number;
  /** --metrics-token: the file holding the token /metrics then requires; else PPN_METRICS_TOKEN's value. */
  metricsTokenFile?: string;
  /** Serve HTTPS from these files, re-read on SIGHUP (docs/operations.md, TLS). */
  tls?: ServerTlsFiles;
  /** Proxies whose X-Forwarded-For names the client. */
  trustProxy?: string[];
  /** Seconds a graceful stop may take before the server exits anyway (default DEFAULT_SHUTDOWN_TIMEOUT_S). */
  shutdownTimeoutS?: number;
}

/** Below systemd's TimeoutStopSec (30 s in the unit install-service writes), so the server ends itself first. */
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 20;

/**
 * The token guarding /metrics: the file's first line (--metrics-token), else PPN_METRICS_TOKEN's
 * value, else none. Never logged. At least 16 visible ASCII characters, as a bearer token is sent.
 */
export function readMetricsToken(file: string | undefined): string | undefined {
  let token: string;
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').split('\n')[0]!.trim();
    } catch (error) {
      throw new CliError(`--metrics-token: cannot read ${file}: ${(error as Error).message}`, 2);
    }
  } else if (process.env.PPN_METRICS_TOKEN !== undefined) {
    token = process.env.PPN_METRICS_TOKEN.trim();
  } else {
    return undefined;
  }
  const from = file !== undefined ? `the first line of ${file}` : 'PPN_METRICS_TOKEN';
  if (!/^[\x21-\x7e]{16,}$/.test(token))
    throw new CliError(`the metrics token (${from}) must be at least 16 visible ASCII characters, e.g. from "openssl rand -hex 32"`, 2);
  return token;
}

export function parseListen(text: string, option = '--listen', example = DEFAULT_LISTEN): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new CliError(`${option} wants HOST:PORT, e.g. ${example}; got "${text}"`, 2);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/** PPN_REVOCATION_POLL_MS tunes the revocation poll (milliseconds, 50 to 600000). */
function pollMsFromEnv(): number | undefined {
  const text = process.env.PPN_REVOCATION_POLL_MS;
  if (text === undefined) return undefined;
  const ms = Number(text);
  if (!Number.isSafeInteger(ms) || ms < 50 || ms > 600_000) throw new CliError('PPN_REVOCATION_POLL_MS must be a whole number from 50 to 600000', 2);
  return ms;
}

export async function serve(options: ServeOptions): Promise<void> {
  const say = startupLog();
  const { host, port } = parseListen(options.listen);
  const agentListen = options.agentListen ? parseListen(options.agentListen, '--agent-listen', EXAMPLE_AGENT_LISTEN) : undefined;
  const metricsToken = readMetricsToken(options.metricsTokenFile);
  // Before anything else, so a wrong file stops the server before it takes the data directory.
  const tls = options.tls ? readServerTls(options.tls) : undefined;
  const { dataDir, database } = options;
  const { tightened } = initDataDir(dataDir);
  for (const dir of tightened) say(`tightened ${dir} to 0700: it holds the keys and the database`);
  const unlock = lockDataDir(dataDir, new Date());
  process.on('exit', unlock);
  if (options.forgetDatabaseUrl && forgetDatabaseUrl(dataDir)) {
    say(`forgot the PostgreSQL URL in ${databaseUrlFile(dataDir)}: this directory's state is in its SQLite file again`);
  }
  const store = await withDatabaseSource(database, () => openWritableStore(dataDir, database?.url));
  // Only a URL that connected and migrated is remembered: a wrong one never sticks.
  if (database) rememberDatabaseUrl(dataDir, database.url);
  const { keyring, created: newPlatformKey } = await preparePlatformKeys(store, dataDir);
  const deps = controlDeps(store);

  writeLedgerPublicKey(dataDir);
  // The admin token's TOKEN_ISSUED entry is written only to a ledger that passed the start-up check.
  const tokenFile = adminTokenFile(dataDir);
  const needsToken = newPlatformKey || !existsSync(tokenFile);
  const writeAdminToken = async () => {
    if (!needsToken) return;
    const { token, row } = await mintAdminToken(deps, keyring, loadAdminKey(dataDir).publicKey, DEFAULT_ADMIN_TOKEN_SECONDS);
    writeSecretFile(tokenFile, `${token}\n`);
    say(`wrote a platform-admin token (${row.token_id}, expires ${row.expires_at}) to ${tokenFile}`);
  };
  const logStream = serverLogStream();
  const app = await buildApp({
    store,
    keyring,
    clock: deps.clock,
    ids: deps.ids,
    logger: { level: options.logLevel, stream: logStream },
    runBackgroundWork: true,
    revocationPollMs: pollMsFromEnv(),
    ledgerSigner: loadLedgerSigner(dataDir),
    ledgerStateDir: dataDir,
    nonceJournalDir: nonceJournalDir(dataDir),
    cpuOvercommit: options.cpuOvercommit,
    heartbeatIntervalS: options.heartbeatIntervalS,
    // Listen at once: /readyz says ledger_verifying until the start-up check ends.
    checkLedgerInBackground: true,
    whenLedgerVerified: writeAdminToken,
    scrubRatePerSecond: options.scrubRate,
    metricsToken,
    https: tls?.https,
    clientCertificateForPlatformAdmin: tls?.clientCertificateForPlatformAdmin,
    trustProxy: options.trustProxy,
  });
  let agentListener: AgentListener | undefined;
  if (options.tls) {
    reloadOnSighup(app.server as unknown as TlsServer, options.tls, app.log);
    process.on('SIGHUP', () => agentListener?.reloadTls());
  }
  // Without TLS there is nothing to reload, but `systemctl reload` (the unit's ExecReload) still
  // sends SIGHUP, whose default action would end the server.
  else process.on('SIGHUP', () => app.log.info('SIGHUP: nothing to reload (no TLS certificate): still serving'));

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    // A client that never finishes its request (or a step that hangs) must not keep a stopping
    // server alive, holding its port and its data directory: past the deadline it exits anyway.
    const timeoutS = options.shutdownTimeoutS ?? DEFAULT_SHUTDOWN_TIMEOUT_S;
    let step = 'finishing requests in flight';
    setTimeout(() => {
      app.log.error({ signal, step }, `shutdown did not finish within ${timeoutS} s (${step}): exiting anyway`);
      process.exit(1);
    }, timeoutS * 1000).unref();
    app.log.info({ signal }, 'shutting down: finishing requests in flight');
    // The agent listener's requests in flight are answered by the app: both finish before the store closes.
    await Promise.all([agentListener?.close(), app.close()]);
    step = 'closing the store';
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  stopWhenNpmIsGone(() => void shutdown('npm exited'));

  // The event loop first: a pool thread woken for work it handed off must not pre-empt it.
  const pool = await lowerThreadPoolPriority();
  if (process.platform === 'linux' && pool.lowered.length < pool.size) {
    app.log.warn({ lowered: pool.lowered.length, size: pool.size }, `lowered only ${pool.lowered.length} of ${pool.size} thread pool threads to nice ${POOL_NICE}`);
  }
  const address = await app.listen({ host, port });
  say(`service-vm-tenant listening on ${address} (data: ${dataDir}, store: ${store.location})`);
  if (agentListen) {
    agentListener = await startListenerOrStop(app, store, options, agentListen, (lines) => logStream.write(lines));
    say(`the node agents' routes (enroll, heartbeat, console) are also served on ${agentListener.address}, from a worker thread (--agent-listen)`);
  }
  if (metricsToken !== undefined) say('/metrics answers only the metrics token, with the per-tenant series');
  if (tls) say(`serving TLS with certificate ${tls.fingerprint}${tls.clientCertificateForPlatformAdmin ? '; platform-admin tokens need a client certificate' : ''}`);
  await ledgerChecked(app);
  const problem = ledgerProblemOf(app);
  if (problem && needsToken) say(`wrote no platform-admin token to ${tokenFile}: the ledger failed its check at index ${problem.index}`);
}

/**
 * The agent listener (src/api/agent-listener/), on the API port's certificate. A port it cannot
 * take stops the start: the API closes, the store too, and the command fails naming the option.
 */
async function startListenerOrStop(
  app: TypedApp,
  store: Store,
  options: ServeOptions,
  { host, port }: { host: string; port: number },
  writeLog: (lines: string) => void,
): Promise<AgentListener> {
  try {
    return await startAgentListener({
      host,
      port,
      answer: agentCallsOf(app),
      recordHttp: httpMetricsOf(app),
      log: app.log,
      writeLog,
      logLevel: options.logLevel,
      tls: options.tls,
      trustProxy: options.trustProxy,
    });
  } catch (error) {
    await app.close();
    await store.close();
    throw new CliError(`--agent-listen ${options.agentListen}: cannot serve the agent routes there: ${(error as Error).message}`, 1);
  }
}

/**
 * The server's own start-up lines: readable text on a terminal, and otherwise pino JSON lines at
 * info level like the rest of the log, whatever --log-level says (they name the admin token file
 * and the address).
 */
function startupLog(): (message: string) => void {
  if (process.stdout.isTTY) return (message) => process.stdout.write(`${message}\n`);
  const logger = pino({ level: 'info' }, pino.destination({ dest: 1, sync: true }));
  return (message) => logger.info(message);
}

/**
 * `npx service-vm-tenant serve` runs the server under `sh -c`, and npm passes a SIGTERM it receives
 * to that shell only; the shell dies without passing it on, and the server would live on, re-parented,
 * holding the port and the data-directory lock. So a server started by npm stops, as on SIGTERM, once
 * the process that started it is gone. (`npm start` itself execs the server, so npm signals it.)
 */
function stopWhenNpmIsGone(stop: () => void): void {
  if (process.env.npm_lifecycle_event === undefined) return;
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 250).unref();
}
