/**
 * `npm run bench:usage`: what a tenant's size costs a VM create (issue 11, "usage in constant time").
 * Two tenants in one store: one holding BENCH_USAGE_VMS VMs (default 50,000) and one that starts
 * empty. Each round times creates in both, one after the other, in an order that alternates round
 * by round (so drift in the machine's speed hits both alike); each create is the real control
 * function (createVm: tenant lock, name check, quota decision, VM insert, usage update, ledger
 * entry) in its own durable transaction, one at a time. The figure is the median over the rounds of
 * (creates/s in the full tenant ÷ creates/s in the empty one), beside this process's CPU time per
 * create. No HTTP: the request path above createVm costs the same whatever the tenant's size.
 *
 * SQLite (a file with the server's pragmas: WAL, synchronous=FULL) always; PostgreSQL too when
 * PPN_TEST_DATABASE_URL names a server (scripts/with-postgres.sh sets it). Options: BENCH_ROUNDS
 * (default 5), BENCH_USAGE_SLICE (seconds per tenant per round, default 2), BENCH_USAGE_VMS.
 * Temporary directories and databases are removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { makeIdSource, systemClock, isoTime } from '../src/clock.js';
import { openWritableStore } from '../src/cli/common.js';
import type { ControlDeps, Origin } from '../src/control/context.js';
import { createTenant } from '../src/control/tenants.js';
import { findUsageDrift } from '../src/control/usage-audit.js';
import { createVm } from '../src/control/vms.js';
import { LOCAL_OPERATOR } from '../src/ledger/entry.js';
import { inTransaction, type Store } from '../src/store/store.js';
import { insertVm } from '../src/store/vms.js';
import { freshDatabase } from './ledger.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SLICE_SECONDS = Number(process.env.BENCH_USAGE_SLICE ?? 2);
const FULL_VMS = Number(process.env.BENCH_USAGE_VMS ?? 50_000);
const SEED_BATCH = 5_000;
const TENANTS = ['bench-empty', 'bench-full'] as const;
const origin: Origin = { actor: LOCAL_OPERATOR, requestId: null };
const log = (line: string): void => void process.stderr.write(`${line}\n`);

interface Slice {
  creates: number;
  wallNs: number;
  cpuUs: number;
}

/** Both tenants, the full one holding FULL_VMS VMs inserted as createVm would (usage kept), without ledger entries. */
async function seed(deps: ControlDeps): Promise<void> {
  for (const tenant_id of TENANTS) {
    await createTenant(deps, origin, {
      tenant_id,
      display_name: tenant_id,
      max_vms: 1_000_000,
      storage_quota_gb: 100_000_000,
      api_rate_limit_rpm: 600,
      max_vcpus: null,
      max_memory_mb: null,
    });
  }
  const now = isoTime(deps.clock.now());
  for (let start = 0; start < FULL_VMS; start += SEED_BATCH) {
    await inTransaction(deps.store, async (trx) => {
      for (let i = start; i < Math.min(FULL_VMS, start + SEED_BATCH); i++) {
        await insertVm(trx, {
          vm_id: `vm-seed-${i}`,
          tenant_id: 'bench-full',
          name: `seed-${i}`,
          vcpus: 2,
          memory_mb: 2048,
          disk_gb: 20,
          image: 'debian-12',
          state: 'running',
          desired_state: 'running',
          node_id: null,
          node_pool: null,
          reason: null,
          created_at: now,
          updated_at: now,
          created_by: null,
          token_chain: null,
        });
      }
    });
  }
}

async function createFor(deps: ControlDeps, tenantId: string, seconds: number): Promise<Slice> {
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const until = started + BigInt(Math.round(seconds * 1e9));
  let creates = 0;
  while (process.hrtime.bigint() < until) {
    await createVm(deps, origin, tenantId, { name: null, vcpus: 1, memory_mb: 512, disk_gb: 5, image: null, node_id: null }, null);
    creates++;
  }
  const cpu = process.cpuUsage(cpuBefore);
  return { creates, wallNs: Number(process.hrtime.bigint() - started), cpuUs: cpu.user + cpu.system };
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const rate = (s: Slice): number => s.creates / (s.wallNs / 1e9);
const cpuPer = (s: Slice): number => s.cpuUs / s.creates;

/** The rounds on one store; returns the report's lines. */
async function measure(store: Store, label: string): Promise<string[]> {
  const deps: ControlDeps = { store, clock: systemClock, ids: makeIdSource(systemClock) };
  const seedStarted = Date.now();
  await seed(deps);
  log(`usage bench (${label}): seeded ${FULL_VMS.toLocaleString('en-US')} VMs in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);
  // A short warm-up of each, so neither tenant pays for the first compilations.
  for (const tenantId of TENANTS) await createFor(deps, tenantId, 0.3);
  const slices: Record<(typeof TENANTS)[number], Slice[]> = { 'bench-empty': [], 'bench-full': [] };
  for (let round = 0; round < ROUNDS; round++) {
    log(`usage bench (${label}): round ${round + 1} of ${ROUNDS}`);
    const order = round % 2 === 0 ? TENANTS : ([...TENANTS].reverse() as unknown as typeof TENANTS);
    for (const tenantId of order) slices[tenantId].push(await createFor(deps, tenantId, SLICE_SECONDS));
  }
  const drift = await findUsageDrift(store);
  const empty = slices['bench-empty'];
  const full = slices['bench-full'];
  const ratios = full.map((s, round) => rate(s) / rate(empty[round]!));
  const ratio = median(ratios);
  const row = (name: string, s: Slice[]) => `| ${label} | ${name} | ${Math.round(median(s.map(rate))).toLocaleString('en-US')} | ${median(s.map(cpuPer)).toFixed(0)} |`;
  return [
    `| store | tenant | creates/s | CPU µs per create |`,
    `|---|---|---|---|`,
    row('empty at the start', empty),
    row(`holding ${FULL_VMS.toLocaleString('en-US')} VMs`, full),
    '',
    `${label}: full ÷ empty ${ratio.toFixed(2)} (per round: ${ratios.map((r) => r.toFixed(2)).join(', ')}; goal ≥ 0.9: ${ratio >= 0.9 ? 'met' : 'not met'}); ` +
      `usage audit after the run: ${drift.length === 0 ? 'no drift' : `${drift.length} rows drifted`}`,
  ];
}

export async function runUsageBench(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const lines: string[] = [];
  const home = mkdtempSync(join(tmpdir(), 'ppn-bench-usage-'));
  try {
    const sqlite = await openWritableStore(home);
    try {
      lines.push(...(await measure(sqlite, 'SQLite')));
    } finally {
      await sqlite.close();
    }
    const adminUrl = process.env.PPN_TEST_DATABASE_URL;
    if (adminUrl) {
      const url = await freshDatabase(adminUrl, 'usage');
      try {
        const postgres = await openWritableStore(home, url);
        try {
          lines.push('', ...(await measure(postgres, 'PostgreSQL')));
        } finally {
          await postgres.close();
        }
      } finally {
        await dropBenchDatabase(adminUrl, url);
      }
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  process.stdout.write(`\n${new Date().toISOString()} — usage — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
  process.stdout.write(`load average (1 min) ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end; `);
  process.stdout.write(`${ROUNDS} rounds of ${SLICE_SECONDS} s per tenant, creates one at a time, each durable\n\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function dropBenchDatabase(adminUrl: string, url: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${new URL(url).pathname.slice(1)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runUsageBench();
