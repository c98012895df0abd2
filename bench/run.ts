/**
 * `npm run bench`: the product beside a baseline measured in the same run.
 *
 *   1. Authenticated GET /v1/vms (a tenant with 50 VMs) beside a bare route on the same server that
 *      sends the same bytes without auth, store or serialisation. The ratio is the figure.
 *   2. POST /v1/vms per second beside a raw better-sqlite3 insert-and-commit loop on a file with the
 *      same pragmas (WAL, synchronous=FULL).
 *
 *   3. With PostgreSQL at hand (PPN_TEST_DATABASE_URL; `npm run bench` starts a throwaway server
 *      with fsync on), POST /v1/vms with one replica, and with two replicas sharing the load.
 *   4. Last, the ledger at scale (bench/ledger.ts, also `npm run bench:ledger` alone).
 *
 * The server runs in a child process; autocannon runs here. The read pair is measured in alternating
 * rounds (bare, authenticated, bare, ...) so that drift in the machine's speed hits both alike; the
 * figure is the median of the per-round ratios. Options: BENCH_SECONDS per measurement (default 5),
 * BENCH_ROUNDS (default 5), BENCH_CONNECTIONS (default 10).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import BetterSqlite3 from 'better-sqlite3';
import { SQLITE_PRAGMAS } from '../src/store/sqlite/open.js';
import { freshDatabase, runLedgerBench } from './ledger.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);

interface ServerInfo {
  url: string;
  dataDir: string;
  readToken: string;
  writeToken: string;
  listBytes: number;
}

async function startBenchServer(env: Record<string, string> = {}): Promise<{ info: ServerInfo; stop: () => void }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'server.js');
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const info = await new Promise<ServerInfo>((done, fail) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline >= 0) done(JSON.parse(buffered.slice(0, newline)) as ServerInfo);
    });
    child.on('exit', (code) => fail(new Error(`bench server exited with ${code}`)));
  });
  return { info, stop: () => child.kill('SIGTERM') };
}

interface Row {
  name: string;
  rate: number;
  p50?: number;
  p99?: number;
  errors: string;
}

async function load(name: string, options: autocannon.Options, expectStatus: number): Promise<Row> {
  process.stderr.write(`running ${name} for ${SECONDS}s...\n`);
  const result = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...options });
  const wrong = result.non2xx + result.errors + result.timeouts;
  if (result[`${expectStatus.toString()[0]}xx` as '2xx'] === 0) throw new Error(`${name}: no ${expectStatus} answers`);
  return {
    name,
    rate: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: wrong === 0 ? '0' : `${result.non2xx} non-2xx, ${result.errors} errors`,
  };
}

function rawSqliteInserts(seconds: number): Row {
  const file = join(mkdtempSync(join(tmpdir(), 'ppn-bench-raw-')), 'raw.sqlite');
  const db = new BetterSqlite3(file);
  for (const pragma of SQLITE_PRAGMAS) db.pragma(pragma);
  db.exec(`CREATE TABLE vms (vm_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, vcpus INTEGER, memory_mb INTEGER,
    disk_gb INTEGER, state TEXT, created_at TEXT, UNIQUE (tenant_id, name))`);
  const insert = db.prepare('INSERT INTO vms VALUES (?, ?, ?, 1, 1024, 10, ?, ?)');
  const insertOne = db.transaction((i: number) => insert.run(`vm-${i}`, 'raw', `name-${i}`, 'pending', new Date().toISOString()));
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(seconds * 1e9);
  let n = 0;
  while (process.hrtime.bigint() < deadline) insertOne(n++);
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  db.close();
  return { name: 'raw better-sqlite3 insert+commit (same pragmas)', rate: n / elapsed, errors: '0' };
}

function table(rows: Row[]): string {
  const header = '| measurement | req/s (or rows/s) | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---|';
  const lines = rows.map((r) => `| ${r.name} | ${r.rate.toFixed(0)} | ${r.p50 ?? '–'} | ${r.p99 ?? '–'} | ${r.errors} |`);
  return [header, ...lines].join('\n');
}

const createOptions = (url: string, token: string, connections: number): autocannon.Options => ({
  url: `${url}/v1/vms`,
  method: 'POST',
  connections,
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: JSON.stringify({ vcpus: 1, memory_mb: 1024, disk_gb: 10 }),
});

/**
 * VM creates on PostgreSQL with one replica, then with two replicas on the same database sharing
 * the load. Runs when a server is at hand (`npm run bench` starts a throwaway one, with fsync on).
 */
async function postgresCreates(): Promise<Row[]> {
  const adminUrl = process.env.PPN_TEST_DATABASE_URL;
  if (!adminUrl) {
    process.stderr.write('no PostgreSQL (PPN_TEST_DATABASE_URL): skipping the PostgreSQL rows\n');
    return [];
  }
  const url = await freshDatabase(adminUrl, 'http');
  const first = await startBenchServer({ BENCH_DATABASE_URL: url });
  const second = await startBenchServer({ BENCH_DATABASE_URL: url, BENCH_DATA_DIR: first.info.dataDir, BENCH_SEED: '0' });
  try {
    const one = await load('POST /v1/vms on PostgreSQL, 1 replica', createOptions(first.info.url, first.info.writeToken, CONNECTIONS), 201);
    process.stderr.write(`running POST /v1/vms on PostgreSQL, 2 replicas for ${SECONDS}s...\n`);
    const halves = await Promise.all(
      [first, second].map((replica) => autocannon({ duration: SECONDS, ...createOptions(replica.info.url, first.info.writeToken, Math.max(1, CONNECTIONS / 2)) })),
    );
    const two: Row = {
      name: 'POST /v1/vms on PostgreSQL, 2 replicas (sum)',
      rate: halves.reduce((sum, r) => sum + r.requests.average, 0),
      p50: Math.max(...halves.map((r) => r.latency.p50)),
      p99: Math.max(...halves.map((r) => r.latency.p99)),
      errors: String(halves.reduce((sum, r) => sum + r.non2xx + r.errors + r.timeouts, 0)),
    };
    return [one, two];
  } finally {
    first.stop();
    second.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The row of a median run (by rate), labelled with the spread of all runs. */
function medianRow(rows: Row[]): Row {
  const rate = median(rows.map((r) => r.rate));
  const closest = rows.reduce((best, r) => (Math.abs(r.rate - rate) < Math.abs(best.rate - rate) ? r : best));
  const low = Math.min(...rows.map((r) => r.rate)).toFixed(0);
  const high = Math.max(...rows.map((r) => r.rate)).toFixed(0);
  return { ...closest, name: `${closest.name} [median of ${rows.length}: ${low}–${high}]`, rate };
}

const { info, stop } = await startBenchServer();
try {
  const auth = { authorization: `Bearer ${info.readToken}` };
  const bares: Row[] = [];
  const reads: Row[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    bares.push(await load(`bare route, same bytes (baseline)`, { url: `${info.url}/bench/bare` }, 200));
    reads.push(await load(`GET /v1/vms, authenticated, 50 VMs`, { url: `${info.url}/v1/vms`, headers: auth }, 200));
  }
  const ratios = reads.map((r, i) => r.rate / bares[i]!.rate);
  const bare = medianRow(bares);
  const read = medianRow(reads);
  const create = await load(
    'POST /v1/vms (quota check + insert + ledger entry)',
    {
      url: `${info.url}/v1/vms`,
      method: 'POST',
      headers: { authorization: `Bearer ${info.writeToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ vcpus: 1, memory_mb: 1024, disk_gb: 10 }),
    },
    201,
  );
  const raw = rawSqliteInserts(SECONDS);
  const rows = [bare, read, create, raw, ...(await postgresCreates())];
  process.stdout.write(`\n${new Date().toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
  process.stdout.write(`${SECONDS}s per HTTP measurement, ${CONNECTIONS} connections; list body ${info.listBytes} bytes\n\n`);
  process.stdout.write(`${table(rows)}\n\n`);
  const percents = ratios.map((r) => `${(r * 100).toFixed(1)}%`).join(', ');
  process.stdout.write(`authenticated read / bare route: ${(median(ratios) * 100).toFixed(1)}% median of rounds (${percents}); target ≥ 50%\n`);
  process.stdout.write(`VM creates / raw insert+commit: ${((create.rate / raw.rate) * 100).toFixed(1)}%\n`);
} finally {
  stop();
}

await runLedgerBench();
