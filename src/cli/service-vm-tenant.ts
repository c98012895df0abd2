#!/usr/bin/env node
/** service-vm-tenant: the API server and its operator commands. */
import { Command, InvalidArgumentError } from 'commander';
import { resolveDataDir } from '../config/data-dir.js';
import { DEFAULT_ADMIN_TOKEN_SECONDS } from '../control/admin-token.js';
import { DEFAULT_SCRUB_RATE } from '../control/ledger-scrub.js';
import { HEARTBEAT_INTERVAL_S } from '../control/nodes.js';
import { DEFAULT_CPU_OVERCOMMIT } from '../control/scheduler.js';
import { MAX_TOKEN_LIFETIME_SECONDS } from '../control/tokens.js';
import { acceptRollback } from './accept-rollback.js';
import { backup } from './backup.js';
import { restore } from './restore.js';
import { printAdminToken, type SharedNodeRequest } from './admin-token.js';
import { listKeys, retireKey, rotateKey } from './keys.js';
import { CliError, parsePositiveInt, resolveDatabaseUrl, runCli, withDatabaseSource } from './common.js';
import { addInstallServiceCommand, TENANT_ROLE } from './install-service.js';
import { VERSION } from '../version.js';
import { DEFAULT_LISTEN, DEFAULT_SHUTDOWN_TIMEOUT_S, EXAMPLE_AGENT_LISTEN, parseListen, serve } from './serve.js';
import { parseTrustedProxies } from '../tls/proxies.js';
import type { ServerTlsFiles } from '../tls/server.js';

/** A ratio from 0.1 to 64: below 1 reserves CPU, above 1 shares it (docs/design/fleet.md). */
function parseOvercommit(text: string): number {
  const ratio = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(ratio >= 0.1 && ratio <= 64)) throw new InvalidArgumentError('--cpu-overcommit wants a number from 0.1 to 64, e.g. 4 or 1.5');
  return ratio;
}

const program = new Command('service-vm-tenant').description('PPN control plane API server').version(VERSION, '-V, --version');

program
  .command('serve')
  .description('run the API server (state in the data directory, SQLite)')
  .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR)', undefined)
  .option(
    '--database-url <url>',
    'PostgreSQL URL, postgres://... (env PPN_DATABASE_URL); remembered in the data directory once it works; "" forgets it and uses SQLite; default: the remembered one, else SQLite',
  )
  .option('--listen <host:port>', `address to listen on (env PPN_LISTEN, default ${DEFAULT_LISTEN})`)
  .option(
    '--agent-listen <host:port>',
    `also serve the node agents' routes (enroll, heartbeat, console) on this address, from a worker thread, off the API's event loop (env PPN_AGENT_LISTEN, e.g. ${EXAMPLE_AGENT_LISTEN}; default off)`,
  )
  .option('--log-level <level>', 'pino log level (env PPN_LOG_LEVEL)', process.env.PPN_LOG_LEVEL ?? 'info')
  .option('--cpu-overcommit <ratio>', `vCPUs the scheduler may place per node CPU (default ${DEFAULT_CPU_OVERCOMMIT})`, parseOvercommit, DEFAULT_CPU_OVERCOMMIT)
  .option(
    '--heartbeat-interval <seconds>',
    `seconds between a fleet node's heartbeats, sent to the nodes in every reply; a node silent 3 intervals is unreachable (default ${HEARTBEAT_INTERVAL_S})`,
    parsePositiveInt('--heartbeat-interval', 3600),
    HEARTBEAT_INTERVAL_S,
  )
  .option(
    '--scrub-rate <entries>',
    `entries per second the background scrub of the whole ledger checks on the leader (default ${DEFAULT_SCRUB_RATE}, about a tenth of a core)`,
    parsePositiveInt('--scrub-rate', 10_000_000),
    DEFAULT_SCRUB_RATE,
  )
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain), re-read on SIGHUP (env PPN_TLS_CERT; needs --tls-key)')
  .option('--tls-key <file>', "the certificate's PEM private key (env PPN_TLS_KEY)")
  .option('--tls-client-ca <file>', 'accept platform-admin tokens only on connections presenting a client certificate this CA signed (env PPN_TLS_CLIENT_CA)')
  .option(
    '--trust-proxy <cidr>',
    'a reverse proxy (address or CIDR; repeat, or separate with commas) whose X-Forwarded-For names the client (env PPN_TRUST_PROXY)',
    (value: string, previous: string[]) => [...previous, value],
    [] as string[],
  )
  .option(
    '--shutdown-timeout <seconds>',
    `seconds a graceful stop (SIGTERM, SIGINT) may take finishing requests in flight before the server exits anyway (default ${DEFAULT_SHUTDOWN_TIMEOUT_S})`,
    parsePositiveInt('--shutdown-timeout', 3600),
    DEFAULT_SHUTDOWN_TIMEOUT_S,
  )
  .option(
    '--metrics-token <file>',
    'file whose first line is the token /metrics then requires (Bearer), showing the per-tenant series too (env PPN_METRICS_TOKEN: the token itself)',
  )
  .action((opts: ServeCommandOptions) =>
    runCli(() => {
      const dataDir = resolveDataDir(opts.dataDir);
      return serve({
        tls: tlsFiles(opts),
        trustProxy: trustedProxies(opts.trustProxy),
        dataDir,
        database: resolveDatabaseUrl(dataDir, opts.databaseUrl),
        forgetDatabaseUrl: opts.databaseUrl === '',
        listen: opts.listen ?? process.env.PPN_LISTEN ?? DEFAULT_LISTEN,
        agentListen: opts.agentListen ?? (process.env.PPN_AGENT_LISTEN || undefined),
        logLevel: opts.logLevel,
        cpuOvercommit: opts.cpuOvercommit,
        heartbeatIntervalS: opts.heartbeatInterval,
        scrubRate: opts.scrubRate,
        metricsTokenFile: opts.metricsToken,
        shutdownTimeoutS: opts.shutdownTimeout,
      });
    }),
  );

interface ServeCommandOptions {
  dataDir?: string;
  databaseUrl?: string;
  listen?: string;
  agentListen?: string;
  logLevel: string;
  cpuOvercommit: number;
  heartbeatInterval: number;
  scrubRate: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  trustProxy: string[];
  metricsToken?: string;
  shutdownTimeout: number;
}

/** --tls-cert and --tls-key (or their variables), both or neither; --tls-client-ca only with them. */
function tlsFiles(opts: ServeCommandOptions): ServerTlsFiles | undefined {
  const cert = opts.tlsCert ?? process.env.PPN_TLS_CERT;
  const key = opts.tlsKey ?? process.env.PPN_TLS_KEY;
  const clientCa = opts.tlsClientCa ?? process.env.PPN_TLS_CLIENT_CA;
  if ((cert === undefined) !== (key === undefined)) {
    throw new CliError(
      `--tls-cert and --tls-key (PPN_TLS_CERT, PPN_TLS_KEY) go together: ${cert === undefined ? 'a key was given without its certificate' : 'a certificate was given without its key'}`,
      2,
    );
  }
  if (cert === undefined || key === undefined) {
    if (clientCa !== undefined) throw new CliError('--tls-client-ca needs --tls-cert and --tls-key: client certificates are asked for over TLS only', 2);
    return undefined;
  }
  return { cert, key, clientCa };
}

function trustedProxies(given: string[]): string[] | undefined {
  const values = given.length > 0 ? given : process.env.PPN_TRUST_PROXY ? [process.env.PPN_TRUST_PROXY] : [];
  if (values.length === 0) return undefined;
  try {
    return parseTrustedProxies(values);
  } catch (error) {
    throw new CliError((error as Error).message, 2);
  }
}

program
  .command('admin-token')
  .description("print a fresh platform-admin token minted from the keys in the data directory (with --scope node:agent: a shared fleet node's token)")
  .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR)')
  .option('--database-url <url>', 'PostgreSQL URL (env PPN_DATABASE_URL; default: the one the data directory remembers; "" for SQLite)')
  .option('--expires-in <seconds>', 'lifetime in seconds', parsePositiveInt('--expires-in', MAX_TOKEN_LIFETIME_SECONDS), DEFAULT_ADMIN_TOKEN_SECONDS)
  .option('--scope <scope>', 'service:platform-admin (default), or node:agent for a shared fleet node', 'service:platform-admin')
  .option('--subject <pubkey>', 'with --scope node:agent: the node key "service-vm-host init" printed')
  .action((opts: { dataDir?: string; databaseUrl?: string; expiresIn: number; scope: string; subject?: string }) =>
    runCli(() => {
      const sharedNode = sharedNodeOption(opts.scope, opts.subject);
      const dataDir = resolveDataDir(opts.dataDir);
      const database = resolveDatabaseUrl(dataDir, opts.databaseUrl);
      return withDatabaseSource(database, () => printAdminToken(dataDir, database?.url, opts.expiresIn, sharedNode));
    }),
  );

/** The shared node a `--scope node:agent --subject PUB` asks a token for; undefined for an admin token. */
function sharedNodeOption(scope: string, subject: string | undefined): SharedNodeRequest | undefined {
  if (scope === 'service:platform-admin') {
    if (subject !== undefined) throw new CliError("--subject goes with --scope node:agent (an admin token is bound to the data directory's admin key)", 2);
    return undefined;
  }
  if (scope !== 'node:agent') throw new CliError('--scope is service:platform-admin or node:agent', 2);
  if (subject === undefined) throw new CliError('--scope node:agent needs --subject, the node key "service-vm-host init" printed', 2);
  return { subject };
}

const keys = program.command('keys').description('the platform token-signing keys, shared by every replica through the store');
const storeOptions = (command: Command) =>
  command
    .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR)')
    .option('--database-url <url>', 'PostgreSQL URL (env PPN_DATABASE_URL; default: the one the data directory remembers; "" for SQLite)');
type StoreOpts = { dataDir?: string; databaseUrl?: string };
function withStore(opts: StoreOpts, work: (dataDir: string, databaseUrl: string | undefined) => Promise<void>): Promise<void> {
  return runCli(() => {
    const dataDir = resolveDataDir(opts.dataDir);
    const database = resolveDatabaseUrl(dataDir, opts.databaseUrl);
    return withDatabaseSource(database, () => work(dataDir, database?.url));
  });
}

storeOptions(keys.command('list').description('list the keys: kid, state (active, verifying, retired), created, retired'))
  .option('--json', 'print JSON')
  .action((opts: StoreOpts & { json?: boolean }) => withStore(opts, (dataDir, url) => listKeys(dataDir, url, opts.json === true)));
storeOptions(
  keys.command('rotate').description('make a new key active and print its kid; tokens signed by older keys stay valid until they expire or their key is retired'),
).action((opts: StoreOpts) => withStore(opts, (dataDir, url) => rotateKey(dataDir, url)));
// A kid is base64url and may begin with "-": unknown options are taken as the kid, which retireKey checks.
storeOptions(keys.command('retire').argument('<kid>', 'the key to retire').description('retire a key that is not active: tokens it signed are refused'))
  .allowUnknownOption()
  .action((kid: string, opts: StoreOpts) => withStore(opts, (dataDir, url) => retireKey(dataDir, url, kid)));

storeOptions(
  program
    .command('ledger')
    .description("operator commands on the ledger of the data directory's server")
    .command('accept-rollback')
    .description(
      'accept a ledger that does not extend the checkpoint this server remembers (an older backup restored), recorded as LEDGER_ROLLED_BACK; with the server stopped',
    ),
).action((opts: StoreOpts) => withStore(opts, (dataDir, url) => acceptRollback(dataDir, url)));

program
  .command('backup')
  .description(
    'write a consistent snapshot of the data directory while its server runs (SQLite online backup); with PostgreSQL, print the pg_dump command and write the data-directory part',
  )
  .option('--out <file>', 'the backup file to write (a tar archive, 0600); required with SQLite')
  .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR)')
  .option('--database-url <url>', 'PostgreSQL URL (env PPN_DATABASE_URL; default: the one the data directory remembers; "" for SQLite)')
  .option('--include-keys', 'also put the private keys and the admin token in the file (then a secret)')
  .action((opts: StoreOpts & { out?: string; includeKeys?: boolean }) =>
    runCli(() => {
      const dataDir = resolveDataDir(opts.dataDir);
      return backup({ dataDir, out: opts.out, includeKeys: opts.includeKeys === true, database: resolveDatabaseUrl(dataDir, opts.databaseUrl) });
    }),
  );

program
  .command('restore')
  .argument('<file>', 'a backup written by "service-vm-tenant backup"')
  .description('restore a backup into a data directory no server uses, verifying its ledger first')
  .requiredOption('--data-dir <dir>', 'the data directory to restore into (new or empty, unless --force)')
  .option('--force', 'replace the store of a non-empty directory (never one a server holds)')
  .option('--seen-checkpoint <file>', 'a checkpoint servers have seen (e.g. the latest from GET /v1/ledger/checkpoint): refuse a backup whose ledger does not extend it')
  .option('--accept-rollback', 'accept a backup older than a checkpoint servers have seen, recorded in the ledger as LEDGER_ROLLED_BACK')
  .option('--database-url <url>', 'for a PostgreSQL backup: the database its pg_dump was restored into')
  .option(
    '--ledger-key <key-or-file>',
    "the ledger's verifier key, or a file holding it such as the live ledger.pub: refuse a backup of another key (default: the directory's ledger.pub, else the backup's, trusted on first use)",
  )
  .action((file: string, opts: { dataDir: string; force?: boolean; seenCheckpoint?: string; acceptRollback?: boolean; databaseUrl?: string; ledgerKey?: string }) =>
    runCli(() =>
      restore({
        archive: file,
        dataDir: resolveDataDir(opts.dataDir),
        force: opts.force === true,
        acceptRollback: opts.acceptRollback === true,
        seenCheckpoint: opts.seenCheckpoint,
        databaseUrl: opts.databaseUrl || undefined,
        ledgerKey: opts.ledgerKey,
      }),
    ),
  );

addInstallServiceCommand(
  program,
  {
    role: TENANT_ROLE,
    entry: 'service-vm-tenant.js',
    defaultName: 'ppn-tenant',
    defaultUser: 'ppn',
    stateOption: { flag: '--data-dir', default: '/var/lib/ppn' },
    args: (dataDir, opts) => {
      const listen = opts.listen as string;
      parseListen(listen);
      return ['serve', '--data-dir', dataDir, '--listen', listen];
    },
  },
  (command) => command.option('--listen <host:port>', 'the address serve listens on', DEFAULT_LISTEN),
);

await program.parseAsync();
