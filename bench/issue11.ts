/**
 * The figures of issue 11 (the write path at scale), each beside its baseline measured in the same
 * run. The product is the real `service-vm-tenant serve` (bench/product.ts) at its default log level
 * with its background work on; every baseline is a process of its own (bench/baseline.ts). Where a
 * figure is a ratio, the two sides alternate round by round (odd rounds in one order, even rounds in
 * the reverse) and the figure is the median of the per-round ratios.
 *
 * Sections (BENCH_ONLY=create,pg-create,read,ledger,limiter,checkpoints picks some; default all):
 *   create       POST /v1/vms on SQLite: an empty tenant ÷ the raw better-sqlite3 commit loop, and
 *                a tenant already holding 50,000 VMs ÷ the empty tenant
 *   pg-create    POST /v1/vms on PostgreSQL, 2 replicas, 100 tenants ÷ the raw `pg` commit loop;
 *                2 tenants ÷ 1 tenant on the same 2 replicas
 *   read         authenticated GET /v1/vms at info ÷ a bare Fastify process sending the same bytes,
 *                ÷ one sending a constant JSON, ÷ the product at log level silent (what logging
 *                costs); the same on PostgreSQL ÷ on SQLite
 *   ledger       `service-fs verify` at 1,000,000 entries ÷ the Merkle root of the same lines from a
 *                flat file; the time from start to /healthz and to /readyz 200 on that ledger
 *   limiter      the server's memory with 10,000 tenants at the 100,000 rpm cap, before and after
 *                traffic from all of them
 *   checkpoints  checkpoints signed per second under steady creates
 *
 * Options: BENCH_SHORT=1 (a quick check: 1 s measurements, 1 round, small sizes), BENCH_SECONDS,
 * BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (10), BENCH_LEDGER_ENTRIES (1,000,000),
 * BENCH_FULL_TENANT_VMS (50,000), BENCH_LIMITER_TENANTS (10,000). PostgreSQL rows need
 * PPN_TEST_DATABASE_URL (`npm run bench` starts a throwaway server with fsync on).
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import BetterSqlite3 from 'better-sqlite3';
import { openWritableStore } from '../src/cli/common.js';
import { initDataDir, loadLedgerSigner, sqliteFile, writeLedgerPublicKey } from '../src/config/data-dir.js';
import { readRoot } from '../src/store/ledger-tree.js';
import { inTransaction } from '../src/store/store.js';
import { insertVm } from '../src/store/vms.js';
import type { CapturedAnswer, CommitLoop } from './baseline.js';
import { appendLines, flatFileRoot } from './flat-merkle.js';
import { cliVerify, fillLedger, freshDatabase } from './ledger.js';
import { median } from './tokens.js';
import {
  api,
  benchTenant,
  cpuMicros,
  freePort,
  liveMemoryBytes,
  replicaDataDir,
  rssBytes,
  scratchDir,
  spawnTracked,
  startProduct,
  VM_BODY,
  waitFor,
  type Product,
} from './product.js';

const SHORT = process.env.BENCH_SHORT === '1';
const SECONDS = Number(process.env.BENCH_SECONDS ?? (SHORT ? 1 : 5));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (SHORT ? 1 : 3));
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const LEDGER_ENTRIES = Number(process.env.BENCH_LEDGER_ENTRIES ?? (SHORT ? 20_000 : 1_000_000));
const FULL_TENANT_VMS = Number(process.env.BENCH_FULL_TENANT_VMS ?? (SHORT ? 2_000 : 50_000));
const LIMITER_TENANTS = Number(process.env.BENCH_LIMITER_TENANTS ?? (SHORT ? 200 : 10_000));
const PG_TENANTS = 100;
const BASELINE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'baseline.js');

const log = (message: string): void => void process.stderr.write(`${message}\n`);
const clock = (): bigint => process.hrtime.bigint();
const secondsSince = (start: bigint): number => Number(clock() - start) / 1e9;

// ---------------------------------------------------------------------------------------------
// Measurements

/** One measurement of one kind in one round. */
interface Sample {
  rate: number;
  p50: number;
  p99: number;
  /** CPU time per request of the process(es) measured, µs (the product's server, or the baseline's own). */
  cpu: number;
  errors: number;
}

/** autocannon against `pids`' server(s), charging their CPU time (from /proc) to the requests completed. */
async function hit(runs: autocannon.Options[], pids: number[]): Promise<Sample> {
  const before = pids.map(cpuMicros);
  const results = await Promise.all(runs.map((options) => autocannon({ duration: SECONDS, ...options })));
  const used = pids.reduce((sum, pid, i) => sum + cpuMicros(pid) - before[i]!, 0);
  const completed = results.reduce((sum, r) => sum + r.requests.total, 0);
  const ok = results.reduce((sum, r) => sum + r['2xx'], 0);
  if (ok === 0) throw new Error(`no 2xx answers: ${JSON.stringify(results.map((r) => ({ non2xx: r.non2xx, errors: r.errors })))}`);
  return {
    rate: results.reduce((sum, r) => sum + r.requests.average, 0),
    p50: Math.max(...results.map((r) => r.latency.p50)),
    p99: Math.max(...results.map((r) => r.latency.p99)),
    cpu: used / Math.max(1, completed),
    errors: results.reduce((sum, r) => sum + r.non2xx + r.errors + r.timeouts, 0),
  };
}

/** A commit loop of bench/baseline.ts in its own process. */
function commitLoop(args: string[]): Sample {
  const child = spawnSync(process.execPath, [BASELINE_SCRIPT, ...args], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`baseline ${args[0]} failed: ${child.stderr}`);
  const loop = JSON.parse(child.stdout) as CommitLoop;
  return { rate: loop.commits / loop.seconds, p50: loop.p50, p99: loop.p99, cpu: loop.cpuMicros / loop.commits, errors: 0 };
}

interface Kind {
  name: string;
  /** Untimed preparation before each round's measurement (a fresh tenant, a fresh file). */
  run: (round: number) => Promise<Sample>;
}

/** Every kind once per round, odd rounds in order and even rounds in reverse; the samples by kind. */
async function alternate(kinds: Kind[]): Promise<Map<string, Sample[]>> {
  const samples = new Map<string, Sample[]>(kinds.map((k) => [k.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? kinds : [...kinds].reverse();
    for (const kind of order) {
      log(`round ${round}/${ROUNDS}: ${kind.name} (${SECONDS} s)`);
      samples.get(kind.name)!.push(await kind.run(round));
    }
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------
// The report

/** A line of the detail table: one kind, the median of its rounds. */
interface Detail {
  name: string;
  samples: Sample[];
  unit: string;
}

/** A line of the summary: one figure of the issue's table beside its goal. */
interface Figure {
  figure: string;
  measured: string;
  goal: string;
  met: boolean | null;
}

const details: Detail[] = [];
const figures: Figure[] = [];
const notes: string[] = [];

function detail(name: string, samples: Sample[], unit = 'req/s'): void {
  details.push({ name, samples, unit });
}

/** The per-round ratios a/b, their median, and the list. */
function ratio(a: Sample[], b: Sample[], pick: (s: Sample) => number = (s) => s.rate): { value: number; text: string } {
  const ratios = a.map((s, i) => pick(s) / pick(b[i]!));
  const value = median(ratios);
  return { value, text: `${value.toFixed(2)} (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')})` };
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const rateOf = (samples: Sample[]): number => median(samples.map((s) => s.rate));
const cpuOf = (samples: Sample[]): number => median(samples.map((s) => s.cpu));

function report(): string {
  const lines = [
    '| figure | measured | goal | met |',
    '|---|---|---|---|',
    ...figures.map((f) => `| ${f.figure} | ${f.measured} | ${f.goal} | ${f.met === null ? '–' : f.met ? 'yes' : 'no'} |`),
    '',
    '| kind (median of its rounds; the range of rates in brackets) | rate | p50 ms | p99 ms | CPU µs per request | errors |',
    '|---|---:|---:|---:|---:|---:|',
    ...details.map((d) => {
      const rates = d.samples.map((s) => s.rate);
      const spread = d.samples.length > 1 ? ` (${int(Math.min(...rates))}–${int(Math.max(...rates))})` : '';
      return `| ${d.name} | ${int(rateOf(d.samples))} ${d.unit}${spread} | ${median(d.samples.map((s) => s.p50)).toFixed(2)} | ${median(d.samples.map((s) => s.p99)).toFixed(2)} | ${Number.isNaN(cpuOf(d.samples)) ? '–' : int(cpuOf(d.samples))} | ${d.samples.reduce((sum, s) => sum + s.errors, 0)} |`;
    }),
  ];
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Load shapes

const createRun = (url: string, token: string, connections = CONNECTIONS): autocannon.Options => ({
  url: `${url}/v1/vms`,
  method: 'POST',
  connections,
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: VM_BODY,
});

/** Creates spread over many tenants: each connection cycles through all the tokens, starting at its own place. */
function createsAcross(url: string, tokens: string[], connections: number): autocannon.Options {
  let next = 0;
  return {
    url: `${url}/v1/vms`,
    connections,
    setupClient: (client) => {
      const offset = next++ * Math.ceil(tokens.length / connections);
      client.setRequests(
        tokens.map((_, i) => ({
          method: 'POST' as const,
          path: '/v1/vms',
          headers: { authorization: `Bearer ${tokens[(i + offset) % tokens.length]}`, 'content-type': 'application/json' },
          body: VM_BODY,
        })),
      );
    },
  };
}

const readRun = (url: string, token: string): autocannon.Options => ({ url: `${url}/v1/vms`, connections: CONNECTIONS, headers: { authorization: `Bearer ${token}` } });

// ---------------------------------------------------------------------------------------------
// Seeding through the store files: a tenant's VMs, inserted with the product's own helper in one
// transaction, the server stopped.

async function seedVms(dataDir: string, tenantId: string, count: number): Promise<void> {
  const store = await openWritableStore(dataDir, undefined);
  try {
    const template = await store.db.selectFrom('vms').selectAll().where('tenant_id', '=', tenantId).limit(1).executeTakeFirstOrThrow();
    await inTransaction(store, async (trx) => {
      for (let i = 0; i < count; i++) {
        const id = `vm-seed${i.toString().padStart(8, '0')}`;
        await insertVm(trx, { ...template, vm_id: id, name: id });
      }
    });
  } finally {
    await store.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Sections

async function createSection(): Promise<void> {
  let product = await startProduct();
  let round = 0;
  const fullToken = await benchTenant(product, 'full');
  await api(product.url, 'POST', '/v1/vms', fullToken, JSON.parse(VM_BODY));
  await product.stop();
  log(`create: seeding ${int(FULL_TENANT_VMS - 1)} more VMs into tenant "full" through the store...`);
  await seedVms(product.dataDir, 'full', FULL_TENANT_VMS - 1);
  product = await startProduct({ dataDir: product.dataDir });
  try {
    const samples = await alternate([
      {
        name: 'empty',
        run: async () => {
          const token = await benchTenant(product, `empty-${++round}`);
          return hit([createRun(product.url, token)], [product.pid]);
        },
      },
      { name: 'raw', run: async () => commitLoop(['sqlite', join(scratchDir('raw-sqlite'), 'raw.sqlite'), String(SECONDS)]) },
      { name: 'full', run: async () => hit([createRun(product.url, fullToken)], [product.pid]) },
    ]);
    const [empty, raw, full] = [samples.get('empty')!, samples.get('raw')!, samples.get('full')!];
    detail('POST /v1/vms, SQLite, empty tenant (server CPU)', empty);
    detail('raw better-sqlite3 one-row commit loop, WAL, synchronous=FULL, own process', raw, 'commits/s');
    detail(`POST /v1/vms, SQLite, tenant holding ${int(FULL_TENANT_VMS)} VMs`, full);
    const a = ratio(empty, raw);
    figures.push({
      figure: '`POST /v1/vms` durable, SQLite, ÷ raw better-sqlite3 one-row commit loop (WAL, FULL)',
      measured: `${a.text}; ${int(rateOf(empty))}/s vs ${int(rateOf(raw))}/s; ${(cpuOf(empty) / 1000).toFixed(2)} ms CPU per create`,
      goal: '≥ 1.0 and ≥ 3,000 creates/s',
      met: a.value >= 1 && rateOf(empty) >= 3000,
    });
    const b = ratio(full, empty);
    figures.push({
      figure: `same, tenant already holding ${int(FULL_TENANT_VMS)} VMs ÷ empty tenant`,
      measured: `${b.text}; ${(cpuOf(full) / 1000).toFixed(2)} ms CPU per create`,
      goal: '≥ 0.9',
      met: b.value >= 0.9,
    });
  } finally {
    await product.stop();
  }
}

async function pgCreateSection(adminUrl: string): Promise<void> {
  const first = await startProduct({ databaseUrl: await freshDatabase(adminUrl, 'issue11_create') });
  const second = await startProduct({ dataDir: replicaDataDir(first.dataDir) });
  const replicas = [first, second];
  const pids = replicas.map((r) => r.pid);
  try {
    log(`pg-create: ${PG_TENANTS} tenants...`);
    const tokens: string[] = [];
    for (let i = 0; i < PG_TENANTS; i++) tokens.push(await benchTenant(first, `pg-${i.toString().padStart(3, '0')}`));
    const half = Math.max(1, CONNECTIONS / 2);
    const samples = await alternate([
      {
        name: 'many',
        run: async () =>
          hit(
            replicas.map((r, i) => createsAcross(r.url, i === 0 ? tokens : [...tokens].reverse(), half)),
            pids,
          ),
      },
      { name: 'raw', run: async () => commitLoop(['pg', await freshDatabase(adminUrl, 'raw'), String(SECONDS), String(CONNECTIONS)]) },
      { name: 'one', run: async () => hit([createRun(first.url, tokens[0]!, half), createRun(second.url, tokens[0]!, half)], pids) },
      { name: 'two', run: async () => hit([createRun(first.url, tokens[1]!, half), createRun(second.url, tokens[2]!, half)], pids) },
    ]);
    const [many, raw, one, two] = ['many', 'raw', 'one', 'two'].map((k) => samples.get(k)!) as [Sample[], Sample[], Sample[], Sample[]];
    detail(`POST /v1/vms, PostgreSQL, 2 replicas, ${PG_TENANTS} tenants (CPU of both replicas)`, many);
    detail(`raw \`pg\` one-row commit loop, ${CONNECTIONS} clients, own process`, raw, 'commits/s');
    detail('POST /v1/vms, PostgreSQL, 2 replicas, 1 tenant', one);
    detail('POST /v1/vms, PostgreSQL, 2 replicas, 2 tenants (one per replica)', two);
    const c = ratio(many, raw);
    figures.push({
      figure: `\`POST /v1/vms\`, PostgreSQL (fsync on), 2 replicas, ${PG_TENANTS} tenants ÷ raw \`pg\` one-row commit loop`,
      measured: `${c.text}; ${int(rateOf(many))}/s vs ${int(rateOf(raw))}/s; 2 tenants ÷ 1 tenant: ${ratio(two, one).text}`,
      goal: '≥ 0.5',
      met: c.value >= 0.5,
    });
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
  }
}

/** The product's answer to the read, as the bare baseline replays it (headers Node sets itself left out). */
async function captureAnswer(url: string, token: string, file: string): Promise<number> {
  const response = await fetch(`${url}/v1/vms`, { headers: { authorization: `Bearer ${token}` } });
  const body = await response.text();
  const headers: Record<string, string> = {};
  for (const [name, value] of response.headers) if (!['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding'].includes(name)) headers[name] = value;
  writeFileSync(file, JSON.stringify({ status: response.status, headers, body } satisfies CapturedAnswer));
  return Buffer.byteLength(body);
}

async function startBaselineServer(args: string[]): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const child = spawnTracked(process.execPath, [BASELINE_SCRIPT, args[0]!, String(port), ...args.slice(1)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/v1/vms`, 200, clock(), 30, () => child.exitCode !== null);
  return { url, pid: child.pid! };
}

/** A reader tenant with 50 VMs, one per round, so no round meets the rate limit of an earlier one. */
async function readers(product: Product): Promise<string[]> {
  const tokens: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const token = await benchTenant(product, `reader-${round}`);
    for (let i = 0; i < 50; i++) await api(product.url, 'POST', '/v1/vms', token, { name: `vm-${i}`, vcpus: 2, memory_mb: 2048, disk_gb: 20, image: 'debian-12' });
    tokens.push(token);
  }
  return tokens;
}

async function readSection(adminUrl: string | undefined): Promise<void> {
  const info = await startProduct();
  const silent = await startProduct({ logLevel: 'silent' });
  const onPg = adminUrl ? await startProduct({ databaseUrl: await freshDatabase(adminUrl, 'issue11_read') }) : undefined;
  const servers = [info, silent, ...(onPg ? [onPg] : [])];
  try {
    log('read: seeding the reader tenants...');
    const infoTokens = await readers(info);
    const silentTokens = await readers(silent);
    const pgTokens = onPg ? await readers(onPg) : [];
    const answerFile = join(scratchDir('answer'), 'answer.json');
    const bodyBytes = await captureAnswer(info.url, infoTokens[0]!, answerFile);
    const bare = await startBaselineServer(['bare', answerFile]);
    const constant = await startBaselineServer(['constant']);
    const kinds: Kind[] = [
      { name: 'info', run: async (round) => hit([readRun(info.url, infoTokens[round - 1]!)], [info.pid]) },
      { name: 'bare', run: async () => hit([readRun(bare.url, '')], [bare.pid]) },
      { name: 'silent', run: async (round) => hit([readRun(silent.url, silentTokens[round - 1]!)], [silent.pid]) },
      { name: 'constant', run: async () => hit([readRun(constant.url, '')], [constant.pid]) },
      ...(onPg ? [{ name: 'pg', run: async (round: number) => hit([readRun(onPg.url, pgTokens[round - 1]!)], [onPg.pid]) }] : []),
    ];
    const samples = await alternate(kinds);
    const get = (name: string): Sample[] => samples.get(name)!;
    detail('GET /v1/vms, SQLite, 50 VMs, bearer token, log level info (the default)', get('info'));
    detail('the same, log level silent', get('silent'));
    detail(`bare Fastify process sending the same ${bodyBytes} bytes and headers`, get('bare'));
    detail('bare Fastify process sending a constant JSON', get('constant'));
    const d = ratio(get('info'), get('bare'));
    figures.push({
      figure: 'authenticated `GET /v1/vms` at the default log level ÷ a bare Fastify process sending the same bytes',
      measured: `${d.text}; ÷ constant JSON: ${ratio(get('info'), get('constant')).text}`,
      goal: '≥ 0.70',
      met: d.value >= 0.7,
    });
    const cost = get('info').map((s, i) => 1 - s.rate / get('silent')[i]!.rate);
    const cpuCost = get('info').map((s, i) => 1 - get('silent')[i]!.cpu / s.cpu);
    figures.push({
      figure: 'info logging’s share of the read path: 1 − (rate at info ÷ rate at silent)',
      measured: `${(median(cost) * 100).toFixed(1)} % (rounds: ${cost.map((c) => `${(c * 100).toFixed(1)} %`).join(', ')}); of the server CPU per read: ${(median(cpuCost) * 100).toFixed(1)} %`,
      goal: '< 10 %',
      met: median(cost) < 0.1,
    });
    if (onPg) {
      detail('GET /v1/vms, PostgreSQL, 50 VMs, bearer token, log level info', get('pg'));
      const e = ratio(get('pg'), get('info'));
      figures.push({ figure: 'authenticated `GET /v1/vms` on PostgreSQL ÷ the same on SQLite', measured: e.text, goal: '≥ 0.5', met: e.value >= 0.5 });
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

async function ledgerSection(): Promise<void> {
  const dataDir = join(scratchDir('ledger'), '.ppn');
  initDataDir(dataDir);
  writeLedgerPublicKey(dataDir);
  const store = await openWritableStore(dataDir, undefined);
  const flatFile = join(dirname(dataDir), 'entries.txt');
  let expected: Buffer;
  try {
    await fillLedger(store, loadLedgerSigner(dataDir), LEDGER_ENTRIES, `ledger ${int(LEDGER_ENTRIES)}`);
    expected = await readRoot(store.db, LEDGER_ENTRIES);
    log('ledger: writing the stored lines to a flat file...');
    const fd = openSync(flatFile, 'w');
    try {
      for (let from = 0; from < LEDGER_ENTRIES; from += 10_000) {
        const rows = await store.db
          .selectFrom('ledger_entries')
          .select('entry')
          .where('idx', '>=', from)
          .where('idx', '<', from + 10_000)
          .orderBy('idx')
          .execute();
        appendLines(
          fd,
          rows.map((r) => r.entry),
        );
      }
    } finally {
      closeSync(fd);
    }
  } finally {
    // Closing folds SQLite's write-ahead log into the file: verify reads a quiet, complete ledger.
    await store.close();
  }
  const verifyRounds = SHORT ? 1 : 3;
  const verify: Sample[] = [];
  const flat: Sample[] = [];
  for (let round = 1; round <= verifyRounds; round++) {
    const steps = [
      async () => {
        log(`round ${round}: service-fs verify at ${int(LEDGER_ENTRIES)} entries`);
        const seconds = await cliVerify(dataDir, undefined, LEDGER_ENTRIES);
        verify.push({ rate: LEDGER_ENTRIES / seconds, p50: seconds * 1000, p99: seconds * 1000, cpu: NaN, errors: 0 });
      },
      async () => {
        log(`round ${round}: Merkle root of the flat file`);
        const start = clock();
        const cpu = process.cpuUsage();
        const result = flatFileRoot(flatFile);
        const seconds = secondsSince(start);
        const used = process.cpuUsage(cpu);
        if (!result.root.equals(expected) || result.leaves !== LEDGER_ENTRIES) throw new Error('the flat file gives a different root');
        flat.push({ rate: LEDGER_ENTRIES / seconds, p50: seconds * 1000, p99: seconds * 1000, cpu: (used.user + used.system) / LEDGER_ENTRIES, errors: 0 });
      },
    ];
    for (const step of round % 2 === 1 ? steps : steps.reverse()) await step();
  }
  detail(`service-fs verify, ${int(LEDGER_ENTRIES)} entries, own process (its wall time in the p50 and p99 columns)`, verify, 'entries/s');
  detail('SHA-256 Merkle root of the same lines from a flat file, this process (the same)', flat, 'entries/s');
  const f = ratio(flat, verify);
  figures.push({
    figure: `\`service-fs verify\` at ${int(LEDGER_ENTRIES)} entries ÷ SHA-256 Merkle root of the same lines read from a flat file`,
    measured: `${f.text}; ${(median(verify.map((s) => s.p50)) / 1000).toFixed(2)} s vs ${(median(flat.map((s) => s.p50)) / 1000).toFixed(2)} s`,
    goal: '≤ 2.0',
    met: f.value <= 2,
  });

  const starts: Product[] = [];
  for (let round = 1; round <= 2; round++) {
    log(`start ${round} on the ${int(LEDGER_ENTRIES)}-entry ledger...`);
    const product = await startProduct({ dataDir, readySeconds: 600 });
    starts.push(product);
    await product.stop();
  }
  const times = (pick: (p: Product) => number): string => starts.map((p) => `${pick(p).toFixed(2)} s`).join(', then ');
  figures.push({
    figure: `time from start to answering \`/healthz\`, ${int(LEDGER_ENTRIES)} entries (first start, then a restart)`,
    measured: `${times((p) => p.healthzSeconds)}; to \`/readyz\` 200: ${times((p) => p.readyzSeconds)}`,
    goal: '≤ 2 s at any size',
    met: Math.max(...starts.map((p) => p.healthzSeconds)) <= 2,
  });
}

async function limiterSection(): Promise<void> {
  const inspectPort = await freePort();
  const product = await startProduct({ nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`] });
  const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  try {
    const empty = { heap: await liveMemoryBytes(inspectPort), rss: rssBytes(product.pid) };
    log(`limiter: ${int(LIMITER_TENANTS)} tenants at 100,000 rpm...`);
    const tokens = new Array<string>(LIMITER_TENANTS);
    const workers = 8;
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        for (let i = w; i < LIMITER_TENANTS; i += workers) tokens[i] = await benchTenant(product, `rl-${i.toString().padStart(5, '0')}`);
      }),
    );
    const idle = { heap: await liveMemoryBytes(inspectPort), rss: rssBytes(product.pid) };
    const perTenant = 10;
    log(`limiter: ${perTenant} requests from each tenant...`);
    const start = clock();
    let next = 0;
    const result = await autocannon({
      url: `${product.url}/v1/whoami`,
      connections: CONNECTIONS,
      amount: LIMITER_TENANTS * perTenant,
      setupClient: (client) => {
        const offset = next++;
        client.setRequests(
          Array.from({ length: Math.ceil(LIMITER_TENANTS / CONNECTIONS) }, (_, k) => ({
            method: 'GET' as const,
            path: '/v1/whoami',
            headers: { authorization: `Bearer ${tokens[(offset + k * CONNECTIONS) % LIMITER_TENANTS]}` },
          })),
        );
      },
    });
    const seconds = secondsSince(start);
    const busy = { heap: await liveMemoryBytes(inspectPort), rss: rssBytes(product.pid) };
    detail(`GET /v1/whoami across ${int(LIMITER_TENANTS)} tenants (the limiter's traffic)`, [
      { rate: result.requests.total / seconds, p50: result.latency.p50, p99: result.latency.p99, cpu: NaN, errors: result.non2xx + result.errors + result.timeouts },
    ]);
    let quiet = '';
    if (!SHORT) {
      log('limiter: waiting out the 60 s window...');
      await new Promise((done) => setTimeout(done, 65_000));
      const after = await liveMemoryBytes(inspectPort);
      quiet = `; 65 s later, with no traffic: ${mib(after)} (${int((after - idle.heap) / LIMITER_TENANTS)} bytes a tenant above idle), RSS ${mib(rssBytes(product.pid))}`;
    }
    figures.push({
      figure: `rate-limiter memory, ${int(LIMITER_TENANTS)} tenants at the 100,000 rpm cap, ${perTenant} requests each (memory JS keeps alive after a full GC: V8 heap in use plus buffers outside it; the process's RSS)`,
      measured:
        `no tenants ${mib(empty.heap)}; ${int(LIMITER_TENANTS)} idle tenants ${mib(idle.heap)}; after the traffic ${mib(busy.heap)} ` +
        `(${int((busy.heap - idle.heap) / LIMITER_TENANTS)} bytes a tenant, everything the requests left: limiter, token and tenant caches)${quiet}; ` +
        `RSS ${mib(empty.rss)} → ${mib(idle.rss)} → ${mib(busy.rss)}`,
      goal: 'proportional to traffic actually seen; idle tenants cost nothing',
      met: null,
    });
  } finally {
    await product.stop();
  }
}

function checkpointCount(dataDir: string): number {
  const db = new BetterSqlite3(sqliteFile(dataDir), { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM ledger_checkpoints').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function checkpointSection(): Promise<void> {
  const product = await startProduct();
  try {
    const token = await benchTenant(product, 'steady');
    const before = checkpointCount(product.dataDir);
    const start = clock();
    const samples: Sample[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      log(`checkpoints: steady creates, round ${round}/${ROUNDS} (${SECONDS} s)`);
      samples.push(await hit([createRun(product.url, token)], [product.pid]));
    }
    const seconds = secondsSince(start);
    const signed = checkpointCount(product.dataDir) - before;
    detail('POST /v1/vms, SQLite, steady writes while counting checkpoints', samples);
    const perSecond = signed / seconds;
    figures.push({
      figure: 'checkpoints signed under steady writes',
      measured: `${signed} in ${seconds.toFixed(1)} s: ${perSecond.toFixed(2)} a second, ${int(perSecond * 86_400)} a day`,
      goal: 'at most one per second (86,400 a day)',
      met: perSecond <= 1.0001,
    });
  } finally {
    await product.stop();
  }
}

// ---------------------------------------------------------------------------------------------

export const ISSUE11_SECTIONS = ['create', 'pg-create', 'read', 'ledger', 'limiter', 'checkpoints'] as const;

export async function runIssue11Bench(only: (name: string) => boolean): Promise<void> {
  if (!ISSUE11_SECTIONS.some(only)) return;
  const adminUrl = process.env.PPN_TEST_DATABASE_URL;
  const loadBefore = loadavg();
  const started = clock();
  if (only('create')) await createSection();
  if (only('pg-create')) {
    if (adminUrl) await pgCreateSection(adminUrl);
    else notes.push('no PostgreSQL (PPN_TEST_DATABASE_URL unset): the PostgreSQL create row was skipped');
  }
  if (only('read')) {
    await readSection(adminUrl);
    if (!adminUrl) notes.push('no PostgreSQL: the PostgreSQL read row was skipped');
  }
  if (only('ledger')) await ledgerSection();
  if (only('limiter')) await limiterSection();
  if (only('checkpoints')) await checkpointSection();
  const out = [
    '',
    `${new Date().toISOString()} — issue 11 — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
    `load average (1, 5, 15 min) ${loadBefore.map((l) => l.toFixed(2)).join(', ')} at the start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')} at the end; ${secondsSince(started).toFixed(0)} s in all`,
    `${SECONDS} s per HTTP measurement, ${ROUNDS} round(s), ${CONNECTIONS} connections${SHORT ? ' (BENCH_SHORT)' : ''}`,
    ...notes,
    '',
    report(),
    '',
  ];
  process.stdout.write(out.join('\n'));
}
