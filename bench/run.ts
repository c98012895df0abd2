/**
 * `npm run bench`: the product beside baselines measured in the same run. Sections, in order
 * (BENCH_ONLY=a,b,… runs some of them; BENCH_SHORT=1 makes every issue 11 section a quick check):
 *
 *   create, pg-create, read, ledger, limiter, checkpoints
 *      The figures of issue 11 (bench/issue11.ts): the real server process beside baselines in
 *      processes of their own, alternated round by round, with CPU time per request, p50 and p99.
 *   tokens
 *      Token verification in this process (bench/tokens.ts, also `npm run bench:tokens` alone).
 *   http
 *      GET /v1/vms (a tenant with 50 VMs) in alternating rounds of three on the in-process bench
 *      server (bench/server.ts): a bare route on the same server that sends the same bytes, the
 *      bearer token, and a `pop` token of the same tenant with every request signed (RFC 9421).
 *      Then POST /v1/vms beside a raw better-sqlite3 insert-and-commit loop, and with PostgreSQL at
 *      hand the reads again and creates with one and two replicas.
 *   fleet
 *      1,000 simulated node agents heartbeating against a real server process (bench/fleet.ts).
 *   ledger-scale
 *      The ledger at scale (bench/ledger.ts, also `npm run bench:ledger` alone).
 *
 * The http section's kinds alternate round by round (odd rounds bare, bearer, pop; even rounds the
 * reverse) so that drift in the machine's speed hits all alike; each figure is the median of the
 * per-round ratios. Options: BENCH_SECONDS per measurement (default 5), BENCH_ROUNDS (default 5 for
 * http, 3 for issue 11), BENCH_CONNECTIONS (default 10).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import BetterSqlite3 from 'better-sqlite3';
import { systemClock } from '../src/clock.js';
import { signRequest } from '../src/httpsig/sign.js';
import { SQLITE_PRAGMAS } from '../src/store/sqlite/open.js';
import { privateKeyFromPem } from '../src/tokens/keys.js';
import { runFleetBench } from './fleet.js';
import { ISSUE11_SECTIONS, runIssue11Bench } from './issue11.js';
import { freshDatabase, runLedgerBench } from './ledger.js';
import { finishRun } from './product.js';
import { runTokenBench } from './tokens.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);

interface ServerInfo {
  url: string;
  dataDir: string;
  readToken: string;
  writeToken: string;
  /** A tenant-admin token of the same tenant as readToken, demanding proof of possession. */
  popToken: string;
  /** Its holder's private key, for signing requests as a client does. */
  popKeyPem: string;
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
  /** The server process's CPU time (user + system) per completed request, in µs. */
  serverCpu?: number;
  /** This process's (the load generator's) CPU time per completed request, in µs. */
  generatorCpu?: number;
  errors: string;
}

/** The server's CPU time so far, in µs, as its own process.cpuUsage() reports it. */
async function serverCpuTime(url: string): Promise<number> {
  const usage = (await (await fetch(`${url}/bench/cpu`)).json()) as NodeJS.CpuUsage;
  return usage.user + usage.system;
}

async function load(name: string, options: autocannon.Options, expectStatus: number, cpuOf?: string): Promise<Row> {
  process.stderr.write(`running ${name} for ${SECONDS}s...\n`);
  const serverBefore = cpuOf ? await serverCpuTime(cpuOf) : 0;
  const generatorBefore = process.cpuUsage();
  const result = await autocannon({ connections: CONNECTIONS, duration: SECONDS, ...options });
  const generator = process.cpuUsage(generatorBefore);
  const serverUsed = cpuOf ? (await serverCpuTime(cpuOf)) - serverBefore : 0;
  const wrong = result.non2xx + result.errors + result.timeouts;
  if (result[`${expectStatus.toString()[0]}xx` as '2xx'] === 0) throw new Error(`${name}: no ${expectStatus} answers`);
  const completed = Math.max(1, result.requests.total);
  return {
    name,
    rate: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ...(cpuOf ? { serverCpu: serverUsed / completed, generatorCpu: (generator.user + generator.system) / completed } : {}),
    errors: wrong === 0 ? '0' : `${result.non2xx} non-2xx, ${result.errors} errors`,
  };
}

/**
 * Options for GET /v1/vms under the `pop` token: every request signed by the holder (RFC 9421) with
 * a fresh nonce and `created`, as a client signs (src/httpsig/sign.ts). The signatures are made here
 * before the measurement, `perConnection` for each connection, and each connection sends its own
 * list once through as ready-made bytes, like the bearer requests: signing inside the load generator
 * would take CPU from the server on the same cores, and the point is the server's cost of
 * verifying. A connection that ran out would start its list again, and its replayed nonces would be
 * refused (401s, counted as errors).
 */
function signedReads(info: ServerInfo, perConnection: number): { options: autocannon.Options; signSeconds: number } {
  const privateKey = privateKeyFromPem(info.popKeyPem);
  const started = process.hrtime.bigint();
  const lists = Array.from({ length: CONNECTIONS }, () =>
    Array.from({ length: perConnection }, () => ({
      method: 'GET' as const,
      path: '/v1/vms',
      headers: { authorization: `Bearer ${info.popToken}`, ...signRequest({ method: 'GET', path: '/v1/vms', query: '' }, { privateKey, clock: systemClock }) },
    })),
  );
  const signSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  let next = 0;
  const setupClient = (client: autocannon.Client): void => client.setRequests(lists[next++ % lists.length]!);
  return { options: { url: `${info.url}/v1/vms`, setupClient }, signSeconds };
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
  const header = '| measurement | req/s (or rows/s) | p50 ms | p99 ms | server CPU µs/req | generator CPU µs/req | errors |\n|---|---:|---:|---:|---:|---:|---|';
  const micros = (value: number | undefined): string => (value === undefined ? '–' : value.toFixed(0));
  const lines = rows.map(
    (r) => `| ${r.name} | ${r.rate.toFixed(0)} | ${r.p50 ?? '–'} | ${r.p99 ?? '–'} | ${micros(r.serverCpu)} | ${micros(r.generatorCpu)} | ${r.errors} |`,
  );
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
 * On PostgreSQL, when a server is at hand (`npm run bench` starts a throwaway one, with fsync on):
 * the bearer and pop reads in alternating rounds on one replica (a pop request there records its
 * nonce in the table the replicas share), then VM creates with one replica, and with two replicas on
 * the same database sharing the load.
 */
async function postgresRuns(): Promise<{ rows: Row[]; findings: string[]; signing: string[] }> {
  const adminUrl = process.env.PPN_TEST_DATABASE_URL;
  if (!adminUrl) {
    process.stderr.write('no PostgreSQL (PPN_TEST_DATABASE_URL): skipping the PostgreSQL rows\n');
    return { rows: [], findings: [], signing: [] };
  }
  const url = await freshDatabase(adminUrl, 'http');
  const first = await startBenchServer({ BENCH_DATABASE_URL: url });
  let second: Awaited<ReturnType<typeof startBenchServer>> | undefined;
  try {
    const reads = await readRounds(first.info, ' on PostgreSQL', false);
    second = await startBenchServer({ BENCH_DATABASE_URL: url, BENCH_DATA_DIR: first.info.dataDir, BENCH_SEED: '0' });
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
    return { rows: [...reads.rows, one, two], findings: reads.findings, signing: reads.signing };
  } finally {
    first.stop();
    second?.stop();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The row of a median run (by rate), labelled with the spread of all runs; CPU per request is the median of the runs. */
function medianRow(rows: Row[]): Row {
  const rate = median(rows.map((r) => r.rate));
  const closest = rows.reduce((best, r) => (Math.abs(r.rate - rate) < Math.abs(best.rate - rate) ? r : best));
  const low = Math.min(...rows.map((r) => r.rate)).toFixed(0);
  const high = Math.max(...rows.map((r) => r.rate)).toFixed(0);
  const cpu = (pick: (r: Row) => number | undefined): number | undefined => (pick(closest) === undefined ? undefined : median(rows.map((r) => pick(r)!)));
  return {
    ...closest,
    name: `${closest.name} [median of ${rows.length}: ${low}–${high}]`,
    rate,
    serverCpu: cpu((r) => r.serverCpu),
    generatorCpu: cpu((r) => r.generatorCpu),
  };
}

const percentList = (ratios: number[]): string => ratios.map((r) => `${(r * 100).toFixed(1)}%`).join(', ');

interface ReadRounds {
  /** Summary rows: the median round of each kind. */
  rows: Row[];
  /** Lines that state the per-round ratios. */
  findings: string[];
  /** How long signing each round's pop requests took, outside the measurements. */
  signing: string[];
}

/**
 * GET /v1/vms on one server in alternating rounds: the bare route (with `withBare`), the bearer
 * token, and the `pop` token with every request signed. Odd rounds run in that order, even rounds in
 * the reverse, so neither side always follows the other.
 */
async function readRounds(info: ServerInfo, where: string, withBare: boolean): Promise<ReadRounds> {
  const bares: Row[] = [];
  const reads: Row[] = [];
  const signedRows: Row[] = [];
  const signing: string[] = [];
  const measureBare = async (): Promise<void> => {
    if (withBare) bares.push(await load(`bare route, same bytes (baseline)${where}`, { url: `${info.url}/bench/bare` }, 200, info.url));
  };
  const measureBearer = async (): Promise<void> => {
    const auth = { authorization: `Bearer ${info.readToken}` };
    reads.push(await load(`GET /v1/vms, authenticated, 50 VMs (bearer token)${where}`, { url: `${info.url}/v1/vms`, headers: auth }, 200, info.url));
  };
  const measureSigned = async (): Promise<void> => {
    // Twice the fastest signed rate so far (the first time, the fastest bearer rate): a shortfall
    // would show as 401s in the errors column.
    const expected = signedRows.length > 0 ? 2 * Math.max(...signedRows.map((r) => r.rate)) : Math.max(...reads.map((r) => r.rate));
    const signed = signedReads(info, Math.ceil((expected * SECONDS) / CONNECTIONS) + 100);
    signing.push(`${(signed.signSeconds * 1000).toFixed(0)} ms`);
    signedRows.push(await load(`GET /v1/vms, same tenant, pop token: every request signed (RFC 9421)${where}`, signed.options, 200, info.url));
  };
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? [measureBare, measureBearer, measureSigned] : [measureSigned, measureBearer, measureBare];
    for (const measure of order) await measure();
  }
  const findings: string[] = [];
  if (withBare) {
    const ratios = reads.map((r, i) => r.rate / bares[i]!.rate);
    findings.push(`authenticated read / bare route${where}: ${(median(ratios) * 100).toFixed(1)}% median of rounds (${percentList(ratios)}); target ≥ 50%`);
  }
  const popRatios = signedRows.map((r, i) => r.rate / reads[i]!.rate);
  const extraCpu = signedRows.map((r, i) => r.serverCpu! - reads[i]!.serverCpu!);
  findings.push(
    `signed (pop) read / bearer read${where}: ${(median(popRatios) * 100).toFixed(1)}% of the rate, median of rounds (${percentList(popRatios)}); ` +
      `server CPU +${median(extraCpu).toFixed(0)} µs a request, median of rounds (${extraCpu.map((c) => c.toFixed(0)).join(', ')})`,
  );
  const rows = [...(withBare ? [medianRow(bares)] : []), medianRow(reads), medianRow(signedRows)];
  return { rows, findings, signing };
}

async function runHttpBench(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const { info, stop } = await startBenchServer();
  let sqliteReads: ReadRounds;
  let create: Row;
  try {
    sqliteReads = await readRounds(info, '', true);
    create = await load(
      'POST /v1/vms (quota check + insert + ledger entry)',
      {
        url: `${info.url}/v1/vms`,
        method: 'POST',
        headers: { authorization: `Bearer ${info.writeToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ vcpus: 1, memory_mb: 1024, disk_gb: 10 }),
      },
      201,
    );
  } finally {
    stop();
  }
  const raw = rawSqliteInserts(SECONDS);
  const postgres = await postgresRuns();
  const rows = [...sqliteReads.rows, create, raw, ...postgres.rows];
  process.stdout.write(`\n${new Date().toISOString()} — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
  process.stdout.write(`load average (1 min) ${loadBefore.toFixed(2)} at the start of the HTTP part, ${loadavg()[0]!.toFixed(2)} at the end\n`);
  process.stdout.write(`${SECONDS}s per HTTP measurement, ${CONNECTIONS} connections; list body ${info.listBytes} bytes\n`);
  const signing = [...sqliteReads.signing, ...postgres.signing].join(', ');
  process.stdout.write(`signing the pop requests ahead of each round, outside the measurement: ${signing}\n\n`);
  process.stdout.write(`${table(rows)}\n\n`);
  for (const line of [...sqliteReads.findings, ...postgres.findings]) process.stdout.write(`${line}\n`);
  process.stdout.write(`VM creates / raw insert+commit: ${((create.rate / raw.rate) * 100).toFixed(1)}%\n`);
}

const SECTIONS = [...ISSUE11_SECTIONS, 'tokens', 'http', 'fleet', 'ledger-scale'];
const chosen = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((name) => name.trim()) : SECTIONS;
const unknown = chosen.filter((name) => !SECTIONS.includes(name));
if (unknown.length > 0) throw new Error(`BENCH_ONLY names unknown sections: ${unknown.join(', ')} (known: ${SECTIONS.join(', ')})`);
const only = (name: string): boolean => chosen.includes(name);

try {
  await runIssue11Bench(only);
  if (only('tokens')) await runTokenBench();
  if (only('http')) await runHttpBench();
  if (only('fleet')) await runFleetBench();
  if (only('ledger-scale')) await runLedgerBench();
} finally {
  finishRun();
}
