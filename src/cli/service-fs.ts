#!/usr/bin/env node
/**
 * service-fs: reads and verifies the WORM audit ledger, from a data directory (the default) or from
 * a server with --url and --token (src/cli/remote.ts: then every entry and checkpoint is checked
 * against the ledger key before it is shown).
 */
import { Command } from 'commander';
import { resolveDataDir } from '../config/data-dir.js';
import { CliError, parsePositiveInt, resolveDatabaseUrl, runCli, withDatabaseSource } from './common.js';
import { VERSION } from '../version.js';
import { readCaOption } from './command-line.js';
import { printCheckpoint } from './fs-checkpoint.js';
import { parseEntryIndex, proveEntry } from './fs-prove.js';
import { parseEventType, parseTime, readLedger, type ReadFilters } from './fs-read.js';
import { checkpointRemote, proveRemote, readRemote, verifyRemote } from './fs-remote.js';
import { verifyLedger } from './fs-verify.js';
import type { RemoteOptions } from './remote.js';

// `service-fs read | head` closes the pipe early: stop quietly rather than die with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

interface SourceOptions {
  dataDir?: string;
  databaseUrl?: string;
  url?: string;
  token?: string;
  ledgerKey?: string;
  ca?: string;
  insecure?: boolean;
}

/** Where a command reads the ledger: every command takes the same options. */
function withSource(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR, default ./.ppn)')
    .option('--database-url <url>', 'PostgreSQL URL (env PPN_DATABASE_URL; default: the one the data directory remembers; "" for SQLite)')
    .option('--url <url>', 'read from this server instead, checking every proof (env PPN_URL)')
    .option('--token <token>', 'with --url: a token that may read the ledger (env PPN_TOKEN)')
    .option('--ledger-key <key-or-file>', "with --url: the ledger's verifier key, or a file holding it such as ledger.pub (default: the one pinned on first use)")
    .option('--ca <file>', "with --url: the CA that signs the server's certificate (env PPN_CA; default: the system's)")
    .option('--insecure', 'with --url: allow plain http:// to a server that is not on this machine');
}

/** The remote options when --url (or PPN_URL) is given, else undefined; mixing the two sources is an error. */
function remoteOf(opts: SourceOptions): RemoteOptions | undefined {
  const url = opts.url ?? process.env.PPN_URL;
  if (url === undefined) {
    if (opts.token !== undefined || opts.ledgerKey !== undefined || opts.ca !== undefined || opts.insecure !== undefined) {
      throw new CliError('--token, --ledger-key, --ca and --insecure go with --url', 2);
    }
    return undefined;
  }
  if (opts.dataDir !== undefined || opts.databaseUrl !== undefined) throw new CliError('--url reads from a server: leave out --data-dir and --database-url', 2);
  const token = opts.token ?? process.env.PPN_TOKEN;
  if (!token) throw new CliError('--url needs --token (or PPN_TOKEN): a token with tenant:read or platform-admin scope', 2);
  return { url, token, ledgerKey: opts.ledgerKey, tls: { ca: readCaOption(opts.ca) }, insecure: opts.insecure === true };
}

/** Runs a command against the server --url names, or else against the data directory. */
function fromSource(
  opts: SourceOptions,
  remote: (options: RemoteOptions) => Promise<void>,
  local: (dataDir: string, databaseUrl: string | undefined) => Promise<void>,
): Promise<void> {
  return runCli(() => {
    const remoteOptions = remoteOf(opts);
    if (remoteOptions) return remote(remoteOptions);
    const dataDir = resolveDataDir(opts.dataDir);
    const database = resolveDatabaseUrl(dataDir, opts.databaseUrl);
    return withDatabaseSource(database, () => local(dataDir, database?.url));
  });
}

const program = new Command('service-fs').description('read and verify the PPN audit ledger').version(VERSION, '-V, --version');

type ReadOpts = SourceOptions & ReadFilters;

withSource(program.command('read').description('print ledger entries, oldest first'))
  .option('--filter <key=value>', 'tenant-id=, vm-id=, node-id= or token-id= (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--event-type <type>', 'only this event type, e.g. TENANT_CREATED', parseEventType)
  .option('--since <time>', 'entries at or after this RFC 3339 time', parseTime('--since'))
  .option('--until <time>', 'entries before this RFC 3339 time', parseTime('--until'))
  .option('--limit <n>', 'at most this many entries (default: all)', parsePositiveInt('--limit', Number.MAX_SAFE_INTEGER))
  .option('--json', 'print each entry as its stored JSON line (JSON Lines)', false)
  .action((opts: ReadOpts) =>
    fromSource(
      opts,
      (remote) => readRemote({ ...opts, ...remote }),
      (dataDir, databaseUrl) => readLedger({ ...opts, dataDir, databaseUrl }),
    ),
  );

withSource(program.command('checkpoint').description('print the latest signed checkpoint (a C2SP signed note; verify it with ledger.pub)')).action(
  (opts: SourceOptions) => fromSource(opts, checkpointRemote, printCheckpoint),
);

withSource(
  program
    .command('verify')
    .description(
      "recompute every leaf and tree node and check every checkpoint (remotely: every visible entry's inclusion proof); exit non-zero naming the first bad index",
    ),
).action((opts: SourceOptions) => fromSource(opts, verifyRemote, verifyLedger));

withSource(
  program
    .command('prove')
    .description('print an inclusion proof for entry INDEX against the latest signed checkpoint, checked first')
    .argument('<index>', 'the entry index (from 0)', parseEntryIndex),
).action((index: number, opts: SourceOptions) =>
  fromSource(
    opts,
    (remote) => proveRemote(remote, index),
    (dataDir, databaseUrl) => proveEntry(dataDir, databaseUrl, index),
  ),
);

await program.parseAsync();
