/**
 * `service-vm-tenant backup --out FILE`: a consistent snapshot of a data directory while its server
 * runs (docs/operations.md, "Backup"). With SQLite, the store is copied with SQLite's online backup
 * (src/store/sqlite/backup.ts) through a connection of its own: the server keeps its lock and keeps
 * writing. The copy is verified as `service-fs verify` would before the file is written, so a backup
 * that would not restore is never made. With PostgreSQL, the database is dumped with pg_dump, which
 * this prints; the file then holds the data-directory part only.
 *
 * ledger.state is read before the copy begins: the server writes it only after the checkpoint it
 * names is stored, so the copy always holds that checkpoint and the backup's ledger extends it.
 * The backup carries the latest checkpoint of the copy as its ledger.state.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { adminTokenFile, databaseUrlFile, readLedgerVerifierKey, sqliteFile } from '../config/data-dir.js';
import { ledgerStateText, readLedgerState } from '../config/ledger-state.js';
import { checkLedger } from '../control/ledger-check.js';
import type { SignedTreeHead } from '../ledger/checkpoint.js';
import { redactUrl } from '../store/postgres/open.js';
import { copySqliteOnline } from '../store/sqlite/backup.js';
import { openSqliteStore } from '../store/sqlite/open.js';
import { hashFile, writeArchive, type Member } from './backup-archive.js';
import { VERSION } from '../version.js';
import { CliError, type DatabaseUrl } from './common.js';

export const BACKUP_FORMAT = 'ppn-backup/1';

/** What a backup says about itself, as manifest.json, the archive's first member. */
export interface BackupManifest {
  format: typeof BACKUP_FORMAT;
  created_at: string;
  /** The version of service-vm-tenant that wrote it. */
  version: string;
  store: 'sqlite' | 'postgres';
  /** PostgreSQL: the database the state lives in, without its password; not in the file. */
  database?: string;
  includes_keys: boolean;
  ledger: { entries: number | null; checkpoint: { size: number; root: string } | null };
  vms: number | null;
  tenants: number | null;
  /** Every other member: its size and SHA-256 (hex), checked by restore. */
  files: Record<string, { bytes: number; sha256: string }>;
}

export interface BackupOptions {
  dataDir: string;
  /** Required with SQLite; with PostgreSQL, where to write the data-directory part. */
  out: string | undefined;
  includeKeys: boolean;
  database: DatabaseUrl | undefined;
  now?: () => Date;
}

/** The secret files of a data directory, relative: what --include-keys adds. */
export function secretMembers(dataDir: string): string[] {
  const keys = existsSync(join(dataDir, 'keys')) ? readdirSync(join(dataDir, 'keys')).map((name) => `keys/${name}`) : [];
  return [...keys, basename(adminTokenFile(dataDir)), basename(databaseUrlFile(dataDir))]
    .filter((name) => /^(keys\/|admin\.token$|database\.url$)/.test(name) && existsSync(join(dataDir, name)))
    .sort();
}

/** The key files a server needs besides the store; restore names the missing ones. */
export const REQUIRED_KEYS = ['keys/keyset.kek', 'keys/ledger.pem', 'keys/admin.pem'];

export async function backup(options: BackupOptions): Promise<void> {
  const { dataDir, includeKeys } = options;
  const now = options.now ?? (() => new Date());
  if (!existsSync(join(dataDir, 'ledger.pub'))) throw new CliError(`no data directory at ${dataDir} (it has no ledger.pub): is --data-dir (or PPN_DATA_DIR) right?`);
  if (options.database) return backupPostgresPart(options, now);
  if (!options.out) throw new CliError('--out FILE is required: where to write the backup', 2);
  if (!existsSync(sqliteFile(dataDir))) throw new CliError(`no store at ${sqliteFile(dataDir)}: is --data-dir (or PPN_DATA_DIR) right?`);
  const out = resolve(options.out);
  if (resolve(dirname(out)) === resolve(dataDir)) throw new CliError('--out must be outside the data directory', 2);

  const key = readLedgerVerifierKey(dataDir);
  // Before the copy: every checkpoint the server remembers by now is in the copy.
  const remembered = readLedgerState(dataDir, key);
  const work = mkdtempSync(join(dirname(out), '.ppn-backup-'));
  try {
    const copy = join(work, 'ppn.sqlite');
    const pages = await copySqliteOnline(sqliteFile(dataDir), copy, ({ copied, total, restarted }) => {
      if (copied > 0) process.stderr.write(`copied ${copied} of ${total} pages${restarted ? ' (the server wrote meanwhile: the rest in one step)' : ''}\n`);
    });
    process.stderr.write(`copied the store: ${pages} pages\n`);

    const store = openSqliteStore(copy, { mustExist: true });
    let summary;
    try {
      const result = await checkLedger(store, key, { remembered });
      if (result.problem) {
        throw new CliError(
          `the copy of the store fails verification at index ${result.problem.index}: ${result.problem.what}; no backup written (service-fs verify on the data directory shows the same)`,
        );
      }
      const count = async (table: 'vms' | 'tenants') =>
        Number(
          (
            await store.db
              .selectFrom(table)
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      summary = { entries: result.size, checkpoint: result.latest ?? remembered, vms: await count('vms'), tenants: await count('tenants') };
    } finally {
      await store.close();
    }

    const parts: Member[] = [{ name: 'ppn.sqlite', file: copy, size: statSync(copy).size }, ...dataDirMembers(dataDir, summary.checkpoint, includeKeys)];
    const manifest: BackupManifest = {
      ...manifestHead(now(), 'sqlite', includeKeys),
      ledger: { entries: summary.entries, checkpoint: summary.checkpoint && { size: summary.checkpoint.size, root: summary.checkpoint.root.toString('hex') } },
      vms: summary.vms,
      tenants: summary.tenants,
      files: describeMembers(parts),
    };
    const bytes = writeArchive(out, [{ name: 'manifest.json', data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) }, ...parts], now());
    const at = summary.checkpoint ? `the latest checkpoint at tree size ${summary.checkpoint.size}` : 'no checkpoint yet';
    process.stdout.write(`backup written to ${out}: ${summary.entries} ledger entries (${at}), ${summary.vms} VMs, ${summary.tenants} tenants, ${bytes} bytes\n`);
    warnAboutKeys(out, includeKeys);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function manifestHead(now: Date, store: 'sqlite' | 'postgres', includeKeys: boolean) {
  return { format: BACKUP_FORMAT, created_at: now.toISOString(), version: VERSION, store, includes_keys: includeKeys } as const;
}

/** ledger.pub, ledger.state (as `checkpoint`), and with keys the secret files. */
function dataDirMembers(dataDir: string, checkpoint: SignedTreeHead | null, includeKeys: boolean): Member[] {
  const members: Member[] = [{ name: 'ledger.pub', data: readFileSync(join(dataDir, 'ledger.pub')) }];
  if (checkpoint) members.push({ name: 'ledger.state', data: Buffer.from(ledgerStateText(checkpoint)) });
  if (includeKeys) for (const name of secretMembers(dataDir)) members.push({ name, data: readFileSync(join(dataDir, name)) });
  return members;
}

function describeMembers(members: readonly Member[]): BackupManifest['files'] {
  return Object.fromEntries(members.map((m) => [m.name, 'data' in m ? { bytes: m.data.length, sha256: hashOf(m.data) } : { bytes: m.size, sha256: hashFile(m.file) }]));
}

function hashOf(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function warnAboutKeys(out: string, includeKeys: boolean): void {
  if (includeKeys) {
    process.stderr.write(
      `\nWARNING: ${out} HOLDS THE PRIVATE KEYS (keys/: the ledger signing key, the admin key, the key that seals the platform token keys) and the admin token.\n` +
        'Anyone who reads it can mint platform-admin tokens and sign ledger checkpoints. It is written 0600: keep it like the keys themselves,\n' +
        'and encrypt it before it leaves this host.\n\n',
    );
  } else {
    process.stderr.write(`no keys in ${out}: a restore needs ${REQUIRED_KEYS.join(', ')} from this data directory, kept apart (or a backup with --include-keys)\n`);
  }
}

/**
 * PostgreSQL: the database is not copied here. Prints the pg_dump command (host, port, user and
 * database from the URL; the password never) and what to keep from the data directory, and with
 * --out writes that part.
 */
function backupPostgresPart(options: BackupOptions, now: () => Date): void {
  const { dataDir, includeKeys } = options;
  const url = new URL(options.database!.url);
  const database = decodeURIComponent(url.pathname.slice(1)) || 'postgres';
  const stamp = now()
    .toISOString()
    .replace(/[-:]|\.\d+/g, '');
  const args = ['pg_dump', '--format=custom', `--file=ppn-${database}-${stamp}.dump`];
  if (url.hostname) args.push(`--host=${url.hostname.replace(/^\[|\]$/g, '')}`);
  if (url.port) args.push(`--port=${url.port}`);
  if (url.username) args.push(`--username=${decodeURIComponent(url.username)}`);
  args.push(`--dbname=${database}`);
  const key = readLedgerVerifierKey(dataDir);
  const remembered = readLedgerState(dataDir, key);
  const keep = ['ledger.pub', ...(remembered ? ['ledger.state'] : []), ...REQUIRED_KEYS, 'admin.token', 'database.url'];
  process.stdout.write(
    `the state is in the PostgreSQL database ${redactUrl(options.database!.url)}: this command does not copy it.\n` +
      `Dump the database with (the password, if one is needed, from ~/.pgpass or PGPASSWORD):\n\n` +
      `  ${args.map(shellQuote).join(' ')}\n\n` +
      `and keep with the dump, from ${dataDir}: ${keep.join(', ')}` +
      `${options.out ? ` (${includeKeys ? 'all' : 'all but the keys, admin.token and database.url'} written to ${resolve(options.out)} now)` : ''}.\n` +
      'Copy ledger.state before running pg_dump, as this command does: a dump taken after it extends the checkpoint it names.\n',
  );
  if (!options.out) return;
  const parts = dataDirMembers(dataDir, remembered, includeKeys);
  const manifest: BackupManifest = {
    ...manifestHead(now(), 'postgres', includeKeys),
    database: redactUrl(options.database!.url),
    ledger: { entries: null, checkpoint: remembered && { size: remembered.size, root: remembered.root.toString('hex') } },
    vms: null,
    tenants: null,
    files: describeMembers(parts),
  };
  const out = resolve(options.out);
  const bytes = writeArchive(out, [{ name: 'manifest.json', data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) }, ...parts], now());
  process.stdout.write(`wrote the data-directory part to ${out} (${bytes} bytes): THE DATABASE ITSELF IS NOT IN THIS FILE; keep the pg_dump output with it\n`);
  warnAboutKeys(out, includeKeys);
}

/** A word for a POSIX shell: quoted only when it needs to be. */
function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
