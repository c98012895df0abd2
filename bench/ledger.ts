/**
 * `npm run bench:ledger` (also the last part of `npm run bench`): the audit ledger at scale (issue 4),
 * each figure beside a baseline measured in the same run.
 *
 *   1. Appends through the product's path (appendEntry inside inTransaction: index read, entry
 *      insert, tree nodes), one entry per durable commit for BENCH_SECONDS, then 1000 per
 *      transaction until the ledger holds BENCH_LEDGER_ENTRIES, signing a checkpoint every tenth of
 *      the way. Baselines: a raw better-sqlite3 insert of the same kind of lines into a plain table,
 *      same pragmas, same batching; and the same Kysely insert into ledger_entries without the tree.
 *   2. At full size: inclusion and consistency proofs, beside a primary-key read of one entry
 *      through Kysely, the three interleaved.
 *   3. At full size: the real `service-fs verify` as a child process, and checkLedger in this
 *      process, beside "raw SHA-256 for the same bytes": the same stored lines read with the same
 *      paged select, each leaf hashed and the n−1 interior nodes of the tree hashed once. Also the
 *      hashing alone, with the bytes already in memory, and the bytes hashed as one stream (what
 *      SHA-256 itself costs, without a call per hash). verify / raw is the figure (target ≤ 3×).
 *
 * With PPN_TEST_DATABASE_URL (set by `npm run bench`), steps 1–3 run again on PostgreSQL with
 * BENCH_LEDGER_PG_ENTRIES entries (default 100,000; 0 skips it).
 *
 * Options: BENCH_LEDGER_ENTRIES (default 1,000,000; try 20000 first), BENCH_SECONDS (5),
 * BENCH_LEDGER_PROOFS (2000), BENCH_LEDGER_PG_ENTRIES, BENCH_LEDGER_KEEP=1 (keep the data directory).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { isoTime, makeIdSource, systemClock } from '../src/clock.js';
import { openExistingStore, openWritableStore } from '../src/cli/common.js';
import { initDataDir, loadLedgerSigner, readLedgerVerifierKey, sqliteFile, writeLedgerPublicKey } from '../src/config/data-dir.js';
import { EMPTY_HEAD, signPendingCheckpoint, type LedgerSigner } from '../src/control/checkpoints.js';
import { checkLedger } from '../src/control/ledger-check.js';
import { encodeEntry, type EntryDraft } from '../src/ledger/entry.js';
import { hashLeaf, verifyConsistency, verifyInclusion } from '../src/ledger/merkle.js';
import { latestCheckpoint } from '../src/store/checkpoints.js';
import { appendEntry, lockLedger } from '../src/store/ledger.js';
import { readConsistencyProof, readInclusionProof, readRoot } from '../src/store/ledger-tree.js';
import type { Db } from '../src/store/schema.js';
import { SQLITE_PRAGMAS } from '../src/store/sqlite/open.js';
import { inTransaction, type Store } from '../src/store/store.js';
import { RootBuilder } from './flat-merkle.js';

const ENTRIES = Number(process.env.BENCH_LEDGER_ENTRIES ?? 1_000_000);
const PG_ENTRIES = Number(process.env.BENCH_LEDGER_PG_ENTRIES ?? 100_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PROOFS = Number(process.env.BENCH_LEDGER_PROOFS ?? 2000);
const BATCH = 1000;
/** The paged read of checkLedger (src/control/ledger-check.ts), copied by the raw baseline. */
const PAGE = 5000;
const PROGRESS_EVERY = 100_000;
/** BENCH_LEDGER_KEEP=1 keeps the filled data directory (to profile `service-fs verify` on it). */
const KEEP = process.env.BENCH_LEDGER_KEEP === '1';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../src/cli/service-fs.js');

// ---------------------------------------------------------------------------------------------
// Entries

const ids = makeIdSource(systemClock);
const TENANTS = 64;
/** Each tenant's admin token: its id and its subject, the holder's public key (base64url Ed25519, as tokens carry it). */
const tokens = Array.from({ length: TENANTS }, () => ({ id: ids('tok'), subject: randomBytes(32).toString('base64url') }));
const now = (): string => isoTime(systemClock.now());

/** A VM_CREATED or VM_STATE_CHANGED draft as a tenant admin's request records it (about 450 bytes a line, as the product writes them). */
function draft(i: number): EntryDraft {
  const t = i % TENANTS;
  const tenant = `tenant-${t.toString().padStart(4, '0')}`;
  const common = {
    tenant_id: tenant,
    actor: { token_id: tokens[t]!.id, subject: tokens[t]!.subject, scope: ['service:tenant-admin'] },
    request_id: randomUUID(),
    subject_ids: { vm_id: ids('vm') },
  };
  return i % 4 === 3
    ? { ...common, event_type: 'VM_STATE_CHANGED', data: { desired_state: { from: 'running', to: 'stopped' }, state: 'running' } }
    : { ...common, event_type: 'VM_CREATED', data: { name: `web-${i}`, vcpus: 2, memory_mb: 4096, disk_gb: 40, image: 'debian-12', desired_state: 'running' } };
}

/** appendEntry (src/store/ledger.ts) without its last step, storeLeaf: what the tree adds is the difference. */
async function appendWithoutTree(trx: Db, store: Store, d: EntryDraft): Promise<number> {
  await lockLedger(trx, store.dialect);
  const ts = now();
  const row = await trx
    .selectFrom('ledger_entries')
    .select((eb) => eb.fn.max('idx').as('last'))
    .executeTakeFirst();
  const index = row?.last === null || row?.last === undefined ? 0 : Number(row.last) + 1;
  const line = encodeEntry({ index, ts, ...d });
  await trx
    .insertInto('ledger_entries')
    .values({
      idx: index,
      ts,
      event_type: d.event_type,
      tenant_id: d.tenant_id,
      vm_id: d.subject_ids.vm_id ?? null,
      node_id: d.subject_ids.node_id ?? null,
      token_id: d.subject_ids.token_id ?? null,
      actor_token_id: d.actor.token_id,
      entry: line,
    })
    .execute();
  return index;
}

// ---------------------------------------------------------------------------------------------
// Measuring

const clock = (): number => Number(process.hrtime.bigint()) / 1e9;
const log = (message: string): void => void process.stderr.write(`${message}\n`);

interface Stats {
  mean: number;
  p99: number;
}

function stats(microseconds: number[]): Stats {
  const sorted = [...microseconds].sort((a, b) => a - b);
  return {
    mean: sorted.reduce((s, v) => s + v, 0) / sorted.length,
    p99: sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!,
  };
}

function randomInt(below: number): number {
  return Math.floor(Math.random() * below);
}

export interface Fill {
  single: number;
  singleCount: number;
  batched: number;
  batchedCount: number;
  checkpoints: number;
  signSeconds: number;
}

/**
 * One entry per transaction for SECONDS, then BATCH per transaction up to `entries`, signing a
 * checkpoint each tenth of the way and at the end. Rates exclude the signing.
 */
export async function fillLedger(store: Store, signer: LedgerSigner, entries: number, label: string): Promise<Fill> {
  log(`${label}: appending one entry per transaction for ${SECONDS}s...`);
  let size = 0;
  let start = clock();
  const deadline = start + SECONDS;
  while (clock() < deadline && size < entries) {
    const d = draft(size);
    await inTransaction(store, (trx) => appendEntry(trx, store.dialect, d, now));
    size++;
  }
  const singleCount = size;
  const single = singleCount / (clock() - start);

  const checkpointEvery = Math.max(BATCH, Math.floor(entries / 10 / BATCH) * BATCH);
  let checkpoints = 0;
  let signSeconds = 0;
  // The signer checks the entries since the last head it signed, as the server's does.
  let head = EMPTY_HEAD;
  const sign = async (): Promise<void> => {
    const t = clock();
    const signed = await signPendingCheckpoint(store, signer, systemClock, head);
    if (signed) {
      checkpoints++;
      head = signed;
    }
    signSeconds += clock() - t;
  };
  log(`${label}: appending ${BATCH} entries per transaction up to ${entries}...`);
  start = clock();
  let last = start;
  let lastSize = size;
  while (size < entries) {
    const count = Math.min(BATCH - (size % BATCH), entries - size);
    const drafts = Array.from({ length: count }, (_, k) => draft(size + k));
    await inTransaction(store, async (trx) => {
      for (const d of drafts) await appendEntry(trx, store.dialect, d, now);
    });
    size += count;
    if (size % checkpointEvery === 0 || size === entries) await sign();
    if (size % PROGRESS_EVERY === 0 || size === entries) {
      const t = clock();
      log(`${label}: ${size} entries, ${(t - start).toFixed(0)} s batched so far, ${((size - lastSize) / (t - last)).toFixed(0)} entries/s since the last line`);
      last = t;
      lastSize = size;
    }
  }
  const batchedCount = size - singleCount;
  const batched = batchedCount / (clock() - start - signSeconds);
  return { single, singleCount, batched, batchedCount, checkpoints, signSeconds };
}

/** The same Kysely insert into ledger_entries as appendEntry, without the tree, BATCH per transaction. */
async function fillWithoutTree(store: Store, entries: number): Promise<number> {
  const start = clock();
  for (let size = 0; size < entries;) {
    const count = Math.min(BATCH, entries - size);
    const drafts = Array.from({ length: count }, (_, k) => draft(size + k));
    await inTransaction(store, async (trx) => {
      for (const d of drafts) await appendWithoutTree(trx, store, d);
    });
    size += count;
  }
  return entries / (clock() - start);
}

/** Raw better-sqlite3 inserts of the same kind of lines into a plain table with the product's pragmas. */
function rawSqliteAppends(entries: number): { single: number; batched: number } {
  const dir = mkdtempSync(join(tmpdir(), 'ppn-bench-ledger-raw-'));
  const db = new BetterSqlite3(join(dir, 'raw.sqlite'));
  try {
    for (const pragma of SQLITE_PRAGMAS) db.pragma(pragma);
    db.exec('CREATE TABLE entries (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO entries (idx, entry) VALUES (?, ?)');
    const line = (i: number): string => encodeEntry({ index: i, ts: now(), ...draft(i) });
    const one = db.transaction((i: number) => insert.run(i, line(i)));
    const many = db.transaction((from: number, count: number) => {
      for (let i = from; i < from + count; i++) insert.run(i, line(i));
    });
    let start = clock();
    const deadline = start + SECONDS;
    let size = 0;
    while (clock() < deadline) one(size++);
    const single = size / (clock() - start);
    start = clock();
    const first = size;
    while (size < first + entries) {
      const count = Math.min(BATCH, first + entries - size);
      many(size, count);
      size += count;
    }
    return { single, batched: entries / (clock() - start) };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Proofs {
  inclusion: Stats;
  consistency: Stats;
  rowRead: Stats;
}

/** Inclusion proofs at `size`, consistency proofs from a random m < size, and row reads, interleaved. */
async function proofTimes(store: Store, size: number): Promise<Proofs> {
  const db = store.db;
  const root = await readRoot(db, size);
  const rowRead = (i: number) => db.selectFrom('ledger_entries').select('entry').where('idx', '=', i).executeTakeFirstOrThrow();
  for (let k = 0; k < 200; k++) {
    await readInclusionProof(db, randomInt(size), size);
    await readConsistencyProof(db, 1 + randomInt(size - 1), size);
    await rowRead(randomInt(size));
  }
  const times = { inclusion: [] as number[], consistency: [] as number[], rowRead: [] as number[] };
  const checks: { index: number; proof: Buffer[]; m: number; mProof: Buffer[] }[] = [];
  for (let k = 0; k < PROOFS; k++) {
    const index = randomInt(size);
    let t = clock();
    const proof = await readInclusionProof(db, index, size);
    times.inclusion.push((clock() - t) * 1e6);
    const m = 1 + randomInt(size - 1);
    t = clock();
    const mProof = await readConsistencyProof(db, m, size);
    times.consistency.push((clock() - t) * 1e6);
    t = clock();
    await rowRead(randomInt(size));
    times.rowRead.push((clock() - t) * 1e6);
    if (k % 100 === 0) checks.push({ index, proof, m, mProof });
  }
  // Untimed: the proofs measured are proofs (a sample of them, checked as a client would).
  for (const c of checks) {
    const line = (await rowRead(c.index)).entry;
    if (!verifyInclusion(c.index, size, hashLeaf(Buffer.from(line)), c.proof, root)) throw new Error(`inclusion proof of ${c.index} does not verify`);
    if (!verifyConsistency(c.m, size, await readRoot(db, c.m), root, c.mProof)) throw new Error(`consistency proof ${c.m}→${size} does not verify`);
  }
  return { inclusion: stats(times.inclusion), consistency: stats(times.consistency), rowRead: stats(times.rowRead) };
}

interface RawHash {
  seconds: number;
  /** Of which waiting for the pages of lines. */
  readSeconds: number;
  bytes: number;
  root: Buffer;
}

/**
 * The baseline for verify: the stored lines read with checkLedger's paged select, SHA-256(0x00‖line)
 * for each and SHA-256(0x01‖left‖right) for each of the n−1 interior nodes.
 */
async function rawHashFromDb(store: Store): Promise<RawHash> {
  const db = store.db;
  const tree = new RootBuilder();
  let readSeconds = 0;
  let bytes = 0;
  let leaves = 0;
  const start = clock();
  for (let size = 0; ;) {
    const t = clock();
    const rows = await db.selectFrom('ledger_entries').select(['idx', 'entry']).where('idx', '>=', size).orderBy('idx').limit(PAGE).execute();
    readSeconds += clock() - t;
    if (rows.length === 0) break;
    for (const row of rows) {
      const line = Buffer.from(row.entry);
      bytes += line.length;
      leaves++;
      tree.add(hashLeaf(line));
    }
    size += rows.length;
  }
  const root = tree.root();
  const seconds = clock() - start;
  if (tree.nodes !== leaves - 1) throw new Error(`hashed ${tree.nodes} interior nodes for ${leaves} leaves`);
  return { seconds, readSeconds, bytes, root };
}

/** All stored lines as one buffer and their offsets (untimed): in memory, as few objects as possible. */
async function readAllLines(store: Store): Promise<{ bytes: Buffer; offsets: Float64Array }> {
  const pages: Buffer[] = [];
  const offsets: number[] = [0];
  let total = 0;
  for (let size = 0; ;) {
    const rows = await store.db.selectFrom('ledger_entries').select(['entry']).where('idx', '>=', size).orderBy('idx').limit(PAGE).execute();
    if (rows.length === 0) break;
    const lines = rows.map((row) => Buffer.from(row.entry));
    for (const line of lines) offsets.push((total += line.length));
    pages.push(Buffer.concat(lines));
    size += rows.length;
  }
  return { bytes: Buffer.concat(pages, total), offsets: Float64Array.from(offsets) };
}

/** The same leaf and node hashes over bytes already in memory. */
function hashInMemory(all: { bytes: Buffer; offsets: Float64Array }): { seconds: number; root: Buffer } {
  const start = clock();
  const tree = new RootBuilder();
  for (let i = 0; i + 1 < all.offsets.length; i++) tree.add(hashLeaf(all.bytes.subarray(all.offsets[i], all.offsets[i + 1])));
  const root = tree.root();
  return { seconds: clock() - start, root };
}

/** One SHA-256 over all the bytes: what the bytes cost to hash, without a call per leaf and node. */
function hashAsOneStream(bytes: Buffer): number {
  const start = clock();
  createHash('sha256').update(bytes).digest();
  return clock() - start;
}

/** The real `service-fs verify` in a child process: wall time, and it must say all entries verified. */
export async function cliVerify(dataDir: string, databaseUrl: string | undefined, size: number): Promise<number> {
  const args = [CLI, 'verify', '--data-dir', dataDir, ...(databaseUrl ? ['--database-url', databaseUrl] : [])];
  const env = { ...process.env };
  delete env.PPN_DATABASE_URL;
  delete env.PPN_DATA_DIR;
  const start = clock();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
  const seconds = clock() - start;
  if (code !== 0 || !out.startsWith(`ledger verified: ${size} entries`)) {
    throw new Error(`service-fs verify exited ${code}: ${out.trim()} ${err.trim()}`);
  }
  log(`  ${out.trim()}`);
  return seconds;
}

async function inProcessCheck(store: Store, dataDir: string, size: number): Promise<number> {
  const key = readLedgerVerifierKey(dataDir);
  const start = clock();
  const result = await checkLedger(store, key);
  const seconds = clock() - start;
  if (result.problem || result.size !== size) throw new Error(`checkLedger: ${result.size} entries, ${JSON.stringify(result.problem)}`);
  return seconds;
}

// ---------------------------------------------------------------------------------------------
// One pass over one store

interface Pass {
  backend: string;
  entries: number;
  fill: Fill;
  withoutTree: number;
  raw?: { single: number; batched: number };
  proofs: Proofs;
  verify: number;
  check: number;
  rawHash: RawHash[];
  inMemory: number;
  oneStream: number;
  lineBytes: number;
  storeBytes?: number;
}

async function runPass(backend: 'sqlite' | 'postgres', entries: number, databaseUrl?: string): Promise<Pass> {
  const label = `${backend} ${entries}`;
  const dataDir = join(mkdtempSync(join(tmpdir(), 'ppn-bench-ledger-')), '.ppn');
  initDataDir(dataDir);
  writeLedgerPublicKey(dataDir);
  const signer = loadLedgerSigner(dataDir);
  try {
    let store = await openWritableStore(dataDir, databaseUrl);
    const fill = await fillLedger(store, signer, entries, label);
    const checkpoint = await latestCheckpoint(store.db);
    if (checkpoint?.size !== entries) throw new Error(`the latest checkpoint is at ${checkpoint?.size}, not ${entries}`);

    log(`${label}: ${PROOFS} inclusion proofs, consistency proofs and row reads, interleaved...`);
    const proofs = await proofTimes(store, entries);
    const expectedRoot = await readRoot(store.db, entries);
    // Closing folds SQLite's write-ahead log into the file: verify reads a quiet, complete ledger.
    await store.close();

    log(`${label}: raw SHA-256 of the stored lines (read as checkLedger reads them)...`);
    store = openExistingStore(dataDir, databaseUrl);
    const first = await rawHashFromDb(store);
    if (!first.root.equals(expectedRoot)) throw new Error('the raw hash pass found a different root');
    await store.close();

    log(`${label}: service-fs verify (child process)...`);
    const verify = await cliVerify(dataDir, databaseUrl, entries);

    store = openExistingStore(dataDir, databaseUrl);
    log(`${label}: checkLedger in this process...`);
    const check = await inProcessCheck(store, dataDir, entries);
    log(`${label}: raw SHA-256 again...`);
    const second = await rawHashFromDb(store);
    log(`${label}: the same hashing over the bytes in memory...`);
    let all: { bytes: Buffer; offsets: Float64Array } | undefined = await readAllLines(store);
    const memory = hashInMemory(all);
    if (!memory.root.equals(expectedRoot)) throw new Error('the in-memory pass found a different root');
    const oneStream = hashAsOneStream(all.bytes);
    all = undefined;
    await store.close();

    const lineBytes = first.bytes / entries;
    const storeBytes = backend === 'sqlite' ? statSync(sqliteFile(dataDir)).size : undefined;

    let withoutTree = 0;
    const otherDir = join(mkdtempSync(join(tmpdir(), 'ppn-bench-ledger-notree-')), '.ppn');
    initDataDir(otherDir);
    const other = await openWritableStore(otherDir, databaseUrl ? await freshDatabase(databaseUrl, 'notree') : undefined);
    try {
      const count = Math.min(entries, 100_000);
      log(`${label}: ${count} entries without the tree, ${BATCH} per transaction...`);
      withoutTree = await fillWithoutTree(other, count);
    } finally {
      await other.close();
      rmSync(dirname(otherDir), { recursive: true, force: true });
    }
    let raw: { single: number; batched: number } | undefined;
    if (backend === 'sqlite') {
      log(`${label}: raw better-sqlite3 inserts of the same lines...`);
      raw = rawSqliteAppends(entries);
    }
    return { backend, entries, fill, withoutTree, raw, proofs, verify, check, rawHash: [first, second], inMemory: memory.seconds, oneStream, lineBytes, storeBytes };
  } finally {
    if (KEEP) log(`${label}: kept the data directory ${dataDir}`);
    else rmSync(dirname(dataDir), { recursive: true, force: true });
  }
}

/** A new database on the PostgreSQL server of `adminUrl`, for one benchmark. */
export async function freshDatabase(adminUrl: string, tag: string): Promise<string> {
  const name = `ppn_bench_${tag}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

// ---------------------------------------------------------------------------------------------
// Report

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const us = (s: Stats): string => `${s.mean.toFixed(0)} / ${s.p99.toFixed(0)} µs`;
const secs = (s: number): string => `${s.toFixed(2)} s`;

function table(pass: Pass): string {
  const n = int(pass.entries);
  const raw = Math.min(...pass.rawHash.map((r) => r.seconds));
  const rawRead = pass.rawHash.find((r) => r.seconds === raw)!.readSeconds;
  const rows: string[][] = [
    [
      `append, 1 entry per transaction (durable commit), ${SECONDS} s from an empty ledger`,
      `${int(pass.fill.single)} entries/s`,
      pass.raw ? 'raw better-sqlite3 insert + commit of the same kind of line, plain table' : '–',
      pass.raw ? `${int(pass.raw.single)} rows/s` : '–',
      pass.raw ? `${((pass.fill.single / pass.raw.single) * 100).toFixed(0)}% of its rate` : '–',
    ],
    [
      `append, ${BATCH} entries per transaction (filling to ${n})`,
      `${int(pass.fill.batched)} entries/s`,
      pass.raw ? `raw better-sqlite3 insert, ${BATCH} rows per transaction, ${n} rows` : '–',
      pass.raw ? `${int(pass.raw.batched)} rows/s` : '–',
      pass.raw ? `${((pass.fill.batched / pass.raw.batched) * 100).toFixed(0)}% of its rate` : '–',
    ],
    [
      `append without the tree (appendEntry minus storeLeaf), ${BATCH} per transaction, first ${int(Math.min(pass.entries, 100_000))}`,
      `${int(pass.withoutTree)} entries/s`,
      '–',
      '–',
      `the tree takes ${((1 - pass.fill.batched / pass.withoutTree) * 100).toFixed(0)}% of the batched append time`,
    ],
    [
      `inclusion proof at ${n} (mean / p99)`,
      us(pass.proofs.inclusion),
      'primary-key read of one entry through Kysely (mean / p99)',
      us(pass.proofs.rowRead),
      `${(pass.proofs.inclusion.mean / pass.proofs.rowRead.mean).toFixed(1)}×`,
    ],
    [
      `consistency proof, random m → ${n} (mean / p99)`,
      us(pass.proofs.consistency),
      'the same row read',
      us(pass.proofs.rowRead),
      `${(pass.proofs.consistency.mean / pass.proofs.rowRead.mean).toFixed(1)}×`,
    ],
    [
      `**service-fs verify** at ${n}, child process, wall`,
      secs(pass.verify),
      `raw SHA-256 of the same bytes: the ${n} stored lines read with the same paged select (${secs(rawRead)} of it), ${n} leaf and ${int(pass.entries - 1)} node hashes`,
      secs(raw),
      `**${(pass.verify / raw).toFixed(2)}×**`,
    ],
    ['checkLedger() in-process (what verify runs)', secs(pass.check), 'the same raw SHA-256', secs(raw), `${(pass.check / raw).toFixed(2)}×`],
  ];
  rows.push(
    ['SHA-256 of the same leaves and nodes, bytes already in memory', secs(pass.inMemory), '–', '–', `raw SHA-256 is ${(raw / pass.inMemory).toFixed(2)}× this`],
    [
      `SHA-256 of the same ${((pass.lineBytes * pass.entries) / 1e6).toFixed(0)} MB as one stream (no call per hash)`,
      secs(pass.oneStream),
      '–',
      '–',
      `verify is ${(pass.verify / pass.oneStream).toFixed(0)}× this`,
    ],
  );
  const header = '| measurement | result | baseline (same run) | baseline | ratio |\n|---|---:|---|---:|---|';
  return [header, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function report(pass: Pass): string {
  const raws = pass.rawHash.map((r) => secs(r.seconds)).join(' and ');
  const notes = [
    `${pass.backend}: ${int(pass.entries)} entries, ${pass.lineBytes.toFixed(0)} bytes a line on average` +
      (pass.storeBytes ? `, database file ${(pass.storeBytes / 2 ** 20).toFixed(0)} MiB` : ''),
    `${pass.fill.singleCount} single-entry appends, then ${int(pass.fill.batchedCount)} batched; ${pass.fill.checkpoints} checkpoints signed (${secs(pass.fill.signSeconds)} in all, not in the rates)`,
    `raw SHA-256 measured before and after verify: ${raws}; the ratio uses the faster`,
  ];
  return `${notes.join('\n')}\n\n${table(pass)}\n`;
}

export async function runLedgerBench(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const passes: Pass[] = [await runPass('sqlite', ENTRIES)];
  const adminUrl = process.env.PPN_TEST_DATABASE_URL;
  if (adminUrl && PG_ENTRIES > 0) passes.push(await runPass('postgres', PG_ENTRIES, await freshDatabase(adminUrl, 'main')));
  else log('ledger bench: no PostgreSQL pass (PPN_TEST_DATABASE_URL unset or BENCH_LEDGER_PG_ENTRIES=0)');
  process.stdout.write(`\n${new Date().toISOString()} — ledger — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
  // Other work on the machine shows here; every figure shares the cores with it.
  process.stdout.write(`load average (1 min) ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end\n\n`);
  for (const pass of passes) process.stdout.write(`${report(pass)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runLedgerBench();
