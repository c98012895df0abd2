#!/usr/bin/env node
/** service-fs: reads the WORM audit ledger of a data directory. */
import { Command } from 'commander';
import { resolveDataDir, resolveDatabaseUrl } from '../config/data-dir.js';
import { parsePositiveInt, runCli } from './common.js';
import { printCheckpoint } from './fs-checkpoint.js';
import { parseEntryIndex, proveEntry } from './fs-prove.js';
import { parseEventType, parseTime, readLedger } from './fs-read.js';
import { verifyLedger } from './fs-verify.js';

// `service-fs read | head` closes the pipe early: stop quietly rather than die with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const program = new Command('service-fs').description('read the PPN audit ledger');

program
  .command('read')
  .description('print ledger entries, oldest first')
  .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR, default ./.ppn)')
  .option('--database-url <url>', 'PostgreSQL URL (env PPN_DATABASE_URL; default: the one the data directory remembers)')
  .option('--filter <key=value>', 'tenant-id=, vm-id=, node-id= or token-id= (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--event-type <type>', 'only this event type, e.g. TENANT_CREATED', parseEventType)
  .option('--since <time>', 'entries at or after this RFC 3339 time', parseTime('--since'))
  .option('--until <time>', 'entries before this RFC 3339 time', parseTime('--until'))
  .option('--limit <n>', 'at most this many entries (default: all)', parsePositiveInt('--limit', Number.MAX_SAFE_INTEGER))
  .option('--json', 'print each entry as its stored JSON line (JSON Lines)', false)
  .action(
    (opts: { dataDir?: string; databaseUrl?: string; filter: string[]; eventType?: string; since?: string; until?: string; limit?: number; json: boolean }) =>
      runCli(() => {
        const dataDir = resolveDataDir(opts.dataDir);
        return readLedger({ ...opts, dataDir, databaseUrl: resolveDatabaseUrl(dataDir, opts.databaseUrl) });
      }),
  );

program
  .command('checkpoint')
  .description('print the latest signed checkpoint (a C2SP signed note; verify it with <data-dir>/ledger.pub)')
  .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR, default ./.ppn)')
  .option('--database-url <url>', 'PostgreSQL URL (env PPN_DATABASE_URL; default: the one the data directory remembers)')
  .action((opts: { dataDir?: string; databaseUrl?: string }) =>
    runCli(() => {
      const dataDir = resolveDataDir(opts.dataDir);
      return printCheckpoint(dataDir, resolveDatabaseUrl(dataDir, opts.databaseUrl));
    }),
  );

program
  .command('verify')
  .description('recompute every leaf and tree node, check every checkpoint; exit non-zero naming the first bad index')
  .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR, default ./.ppn)')
  .option('--database-url <url>', 'PostgreSQL URL (env PPN_DATABASE_URL; default: the one the data directory remembers)')
  .action((opts: { dataDir?: string; databaseUrl?: string }) =>
    runCli(() => {
      const dataDir = resolveDataDir(opts.dataDir);
      return verifyLedger(dataDir, resolveDatabaseUrl(dataDir, opts.databaseUrl));
    }),
  );

program
  .command('prove')
  .description('print an inclusion proof for entry INDEX against the latest signed checkpoint, checked first')
  .argument('<index>', 'the entry index (from 0)', parseEntryIndex)
  .option('--data-dir <dir>', 'data directory (env PPN_DATA_DIR, default ./.ppn)')
  .option('--database-url <url>', 'PostgreSQL URL (env PPN_DATABASE_URL; default: the one the data directory remembers)')
  .action((index: number, opts: { dataDir?: string; databaseUrl?: string }) =>
    runCli(() => {
      const dataDir = resolveDataDir(opts.dataDir);
      return proveEntry(dataDir, resolveDatabaseUrl(dataDir, opts.databaseUrl), index);
    }),
  );

await program.parseAsync();
