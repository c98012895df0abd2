/**
 * `npm run bench:startup`: a server's start on a large ledger, and `service-fs verify` against the
 * flat-file baseline (issue 11), on SQLite, each beside its baseline in the same run.
 *
 *   1. A ledger of BENCH_STARTUP_ENTRIES entries (default 1,000,000) written straight into the
 *      tables (bench/big-ledger.ts), with a checkpoint 1000 entries before the end that ledger.state
 *      remembers, and one at the end.
 *   2. The real server as a child process, from spawn to the first /healthz 200 and to /readyz 200:
 *      with the checkpoint remembered (the start-up check reads the last 1000 entries), and on a copy
 *      without ledger.state (every entry checked, in the background). Baseline: the same server
 *      started on an empty data directory (loading Node, making the keys, migrating).
 *   3. The real `service-fs verify` (every entry, every checkpoint) as a child process, beside the
 *      RFC 9162 root of the same lines read from a flat file with the same hashing (SHA-256 of
 *      0x00‖line per leaf, of 0x01‖left‖right per interior node), also in a child process: the
 *      figure is verify ÷ that (goal ≤ 2.0).
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openExistingStore } from '../src/cli/common.js';
import { fillBigLedger } from './big-ledger.js';

const ENTRIES = Number(process.env.BENCH_STARTUP_ENTRIES ?? 1_000_000);
const TAIL = 1000;
const here = dirname(fileURLToPath(import.meta.url));
const SERVER = join(here, '../src/cli/service-vm-tenant.js');
const FS = join(here, '../src/cli/service-fs.js');
const FLAT_ROOT = join(here, 'flat-root.js');

const log = (message: string): void => void process.stderr.write(`${message}\n`);
const seconds = (): number => performance.now() / 1000;

interface Start {
  healthz: number;
  ready: number;
}

/** Spawns the server on `dataDir`; seconds from spawn to /healthz 200 and to /readyz 200. */
async function timeStart(dataDir: string): Promise<Start> {
  const started = seconds();
  const child = spawn(process.execPath, [SERVER, 'serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((done) => child.on('exit', () => done()));
  try {
    // The port is only known from the start-up line; /healthz is tried as soon as it is.
    let url: string | undefined;
    const status = async (path: string): Promise<number> => {
      url ??= /listening on (http:\/\/[^\s]+:\d+) /.exec(output)?.[1];
      if (!url) return 0;
      return fetch(`${url}${path}`).then(
        (res) => res.status,
        () => 0,
      );
    };
    const until = async (path: string): Promise<number> => {
      while ((await status(path)) !== 200) {
        if (child.exitCode !== null) throw new Error(`the server exited:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return seconds() - started;
    };
    const healthz = await until('/healthz');
    const ready = await until('/readyz');
    return { healthz, ready };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** Runs a child process to its end: seconds, and what it printed. */
async function timeChild(args: string[]): Promise<{ seconds: number; stdout: string }> {
  const started = seconds();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${stdout} ${stderr}`);
  return { seconds: seconds() - started, stdout };
}

/** Every stored line, in index order, one per line of a flat file (untimed). */
async function writeFlatFile(dataDir: string, file: string): Promise<void> {
  const store = openExistingStore(dataDir, undefined);
  const lines: string[] = [];
  try {
    for (let size = 0; ;) {
      const rows = await store.db.selectFrom('ledger_entries').select('entry').where('idx', '>=', size).orderBy('idx').limit(10_000).execute();
      if (rows.length === 0) break;
      for (const row of rows) lines.push(row.entry);
      size += rows.length;
    }
  } finally {
    await store.close();
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

export async function runStartupBench(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const root = mkdtempSync(join(tmpdir(), 'ppn-bench-startup-'));
  try {
    const remembered = join(root, 'remembered', '.ppn');
    log(`startup: writing ${ENTRIES} entries...`);
    const filled = seconds();
    await fillBigLedger(remembered, { entries: ENTRIES, checkpointAt: [ENTRIES - TAIL, ENTRIES], remember: ENTRIES - TAIL });
    log(`startup: written in ${(seconds() - filled).toFixed(0)} s`);
    const none = join(root, 'none', '.ppn');
    cpSync(remembered, none, { recursive: true });
    unlinkSync(join(none, 'ledger.state'));

    log('startup: an empty data directory...');
    const empty = await timeStart(join(root, 'empty', '.ppn'));
    log('startup: the checkpoint remembered...');
    const withState = await timeStart(remembered);
    log('startup: nothing remembered...');
    const withoutState = await timeStart(none);

    log('startup: service-fs verify and the flat-file root...');
    const flat = join(root, 'lines.jsonl');
    await writeFlatFile(remembered, flat);
    const baseline = await timeChild([FLAT_ROOT, flat]);
    const verify = await timeChild([FS, 'verify', '--data-dir', remembered]);
    const baselineAgain = await timeChild([FLAT_ROOT, flat]);
    const base = Math.min(baseline.seconds, baselineAgain.seconds);

    const n = ENTRIES.toLocaleString('en-US');
    const s = (x: number) => `${x.toFixed(2)} s`;
    process.stdout.write(`\n${new Date().toISOString()} — start-up and verify — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
    process.stdout.write(`load average (1 min) ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end\n\n`);
    process.stdout.write('| measurement | result | baseline (same run) | baseline | ratio |\n|---|---:|---|---:|---|\n');
    process.stdout.write(
      `| spawn → /healthz 200, ${n} entries, checkpoint ${TAIL} before the end remembered | ${s(withState.healthz)} | spawn → /healthz 200, empty data directory | ${s(empty.healthz)} | ${(withState.healthz / empty.healthz).toFixed(2)}× |\n`,
    );
    process.stdout.write(
      `| spawn → /readyz 200, the same | ${s(withState.ready)} | spawn → /readyz 200, empty data directory | ${s(empty.ready)} | ${(withState.ready / empty.ready).toFixed(2)}× |\n`,
    );
    process.stdout.write(
      `| spawn → /healthz 200, ${n} entries, no ledger.state | ${s(withoutState.healthz)} | the same, empty data directory | ${s(empty.healthz)} | ${(withoutState.healthz / empty.healthz).toFixed(2)}× |\n`,
    );
    process.stdout.write(`| spawn → /readyz 200, the same (every entry checked in the background) | ${s(withoutState.ready)} | – | – | – |\n`);
    process.stdout.write(
      `| **service-fs verify** at ${n}, child process, wall | ${s(verify.seconds)} | RFC 9162 root of the same lines from a flat file, same hashing, child process (best of 2) | ${s(base)} | **${(verify.seconds / base).toFixed(2)}×** |\n`,
    );
    log(`  ${verify.stdout.trim()}`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runStartupBench();
