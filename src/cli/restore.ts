/**
 * `service-vm-tenant restore FILE --data-dir DIR` (docs/operations.md, "Restore"): unpacks a backup
 * into a data directory no server uses. The backup is unpacked beside the directory's files first
 * and checked there (the whole ledger, as `service-fs verify` checks it, then every member against
 * the manifest); the directory is changed only once all holds.
 *
 * Rollback: a checkpoint that servers have already seen (the directory's own ledger.state, or one
 * the operator passes with --seen-checkpoint) and that the backup's ledger does not extend means the
 * restore rolls the ledger back. That is refused unless --accept-rollback is given, which goes
 * through `ledger accept-rollback`: the restored ledger records LEDGER_ROLLED_BACK, signed, naming
 * the checkpoint it replaces, so every verifier sees the rollback instead of a silent one.
 *
 * The ledger key: the backup brings its ledger.pub, and its ledger is verified with that. The key
 * must be the one --ledger-key pins, when given, and the directory's own ledger.pub, when it has
 * one. With neither (a new directory, without --ledger-key) the backup's key is trusted on first
 * use, as service-fs --url trusts a server's, and stderr names it.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadLedgerSigner, lockDataDir, readLedgerVerifierKey, rememberDatabaseUrl, sqliteFile } from '../config/data-dir.js';
import { ledgerStateFile, readLedgerState, writeLedgerState } from '../config/ledger-state.js';
import { checkLedger } from '../control/ledger-check.js';
import { parseCheckpoint, type SignedTreeHead } from '../ledger/checkpoint.js';
import { openNote, parseVerifierKey, type VerifierKey } from '../ledger/note.js';
import { acceptRollbackLocked } from './accept-rollback.js';
import { unpackArchive } from './backup-archive.js';
import { BACKUP_FORMAT, REQUIRED_KEYS, type BackupManifest } from './backup.js';
import { CliError, openExistingStore } from './common.js';
import { verifyLedger } from './fs-verify.js';
import { givenLedgerKey } from './remote.js';

export interface RestoreOptions {
  archive: string;
  dataDir: string;
  force: boolean;
  acceptRollback: boolean;
  /** A checkpoint note (or a ledger.state file) servers have seen, e.g. the live system's latest. */
  seenCheckpoint: string | undefined;
  /** PostgreSQL: the database the backup's pg_dump was restored into. */
  databaseUrl: string | undefined;
  /** The ledger's verifier key, or a file holding it (ledger.pub): the backup's must be this one. */
  ledgerKey?: string | undefined;
}

/** A checkpoint servers have seen, and where it comes from, for the messages. */
interface Seen {
  checkpoint: SignedTreeHead;
  source: string;
}

export async function restore(options: RestoreOptions): Promise<void> {
  const { archive, dataDir } = options;
  const pinned = options.ledgerKey === undefined ? undefined : givenLedgerKey(options.ledgerKey).key;
  if (!existsSync(archive)) throw new CliError(`no backup at ${archive}`);
  const existed = existsSync(dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lockFile = join(dataDir, 'server.lock');
  const lockExisted = existsSync(lockFile);
  let unlock: () => void;
  try {
    unlock = lockDataDir(dataDir, new Date());
  } catch (error) {
    throw new CliError(
      `${(error as Error).message}: ${dataDir} is a live data directory, and restore never writes into one; stop that server first, or restore into a new directory`,
      1,
      { cause: error },
    );
  }
  let staging: string | undefined;
  try {
    const present = readdirSync(dataDir).filter((name) => name !== 'server.lock');
    if (existed && present.length > 0 && !options.force) {
      throw new CliError(
        `${dataDir} is not empty (it holds ${present.slice(0, 5).join(', ')}${present.length > 5 ? ', ...' : ''}): restore into a new directory, or give --force to replace its store`,
      );
    }
    staging = mkdtempSync(join(dataDir, '.restore-'));
    const unpacked = unpackArchive(archive, staging);
    const manifest = readManifest(archive, staging);
    const databaseUrl = databaseFor(manifest, options.databaseUrl);
    // The key before the ledger: a ledger verified with a key nobody vouches for proves nothing.
    const key = backupLedgerKey(staging);
    const trustedOnFirstUse = checkLedgerKey(staging, dataDir, key, pinned);

    // The ledger first: a damaged one is named by its first bad index, as service-fs verify names it.
    try {
      await verifyLedger(staging, databaseUrl);
    } catch (error) {
      throw new CliError(`the backup does not verify, nothing was restored: ${(error as Error).message}`, 1, { cause: error });
    }
    for (const [name, expected] of Object.entries(manifest.files)) {
      const found = unpacked.members.get(name);
      if (!found || found.sha256 !== expected.sha256 || found.bytes !== expected.bytes) {
        throw new CliError(`the backup's ${name} is ${found ? 'not the file its manifest describes (SHA-256 differs)' : 'missing'}; nothing was restored`);
      }
    }
    const unlisted = [...unpacked.members.keys()].find((name) => name !== 'manifest.json' && !(name in manifest.files));
    if (unlisted) throw new CliError(`the backup holds ${unlisted}, which its manifest does not list; nothing was restored`);
    const seen = seenCheckpoints(dataDir, pinned ?? key, pinned ? 'the ledger key given with --ledger-key' : "the backup's ledger key", options.seenCheckpoint);
    const rolledBack = await notExtended(staging, databaseUrl, key, seen);
    if (rolledBack && !options.acceptRollback) {
      const c = rolledBack.checkpoint;
      throw new CliError(
        `the backup's ledger does not extend the checkpoint at tree size ${c.size} (root ${c.root.toString('hex')}) that ${rolledBack.source} remembers: ` +
          'servers have already seen a longer ledger, so this restore rolls it back. Nothing was restored. ' +
          'If an older state is what you mean to restore, run this again with --accept-rollback: the restored ledger then records LEDGER_ROLLED_BACK, ' +
          'which everyone verifying the ledger will see; or restore a newer backup',
      );
    }

    install(staging, dataDir, unpacked.members.keys(), { rolledBack, seen, databaseUrl });
    process.stdout.write(`restored ${archive} into ${dataDir}\n`);
    if (trustedOnFirstUse) {
      process.stderr.write(
        `trusted the backup's ledger key ${readFileSync(join(dataDir, 'ledger.pub'), 'utf8').trim()} (first use: ${dataDir} had no ledger.pub to check it against; ` +
          'pin the key with --ledger-key <ledger.pub> next time)\n',
      );
    }
    if (rolledBack) {
      if (existsSync(join(dataDir, 'keys', 'ledger.pem'))) await acceptRollbackLocked(dataDir, databaseUrl);
      else
        process.stdout.write(
          `the rollback is not recorded yet (the ledger key is not in place): put the keys in place, then run "service-vm-tenant ledger accept-rollback --data-dir ${dataDir}"; the server refuses to serve until then\n`,
        );
    }
    const missing = REQUIRED_KEYS.filter((name) => !existsSync(join(dataDir, name)));
    if (missing.length > 0) {
      process.stdout.write(
        `the backup holds no keys: before serving, put ${missing.map((name) => join(dataDir, name)).join(', ')} in place (0600), ` +
          'from the original data directory or a backup made with --include-keys. A server started without them makes new keys, ' +
          'which match neither this ledger nor the platform keys sealed in the store, and refuses to serve\n',
      );
    }
  } finally {
    if (staging) rmSync(staging, { recursive: true, force: true });
    unlock();
    if (!lockExisted) rmSync(lockFile, { force: true });
  }
}

function readManifest(archive: string, staging: string): BackupManifest {
  const file = join(staging, 'manifest.json');
  let manifest: Partial<BackupManifest>;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as Partial<BackupManifest>;
  } catch {
    throw new CliError(`${archive} is not a service-vm-tenant backup: it has no readable manifest.json`);
  }
  if (manifest.format !== BACKUP_FORMAT || typeof manifest.files !== 'object' || manifest.files === null) {
    throw new CliError(`${archive} is not a ${BACKUP_FORMAT} backup (its manifest says ${JSON.stringify(manifest.format)})`);
  }
  return manifest as BackupManifest;
}

/** The database to check and restore into: none for SQLite; the one given for a PostgreSQL backup. */
function databaseFor(manifest: BackupManifest, databaseUrl: string | undefined): string | undefined {
  if (manifest.store === 'sqlite') {
    if (databaseUrl) throw new CliError('this backup holds a SQLite store; --database-url is for a PostgreSQL backup', 2);
    return undefined;
  }
  if (!databaseUrl) {
    throw new CliError(
      `this backup holds the data-directory part of a PostgreSQL deployment (${manifest.database ?? 'database not named'}); the database is not in it. ` +
        'Restore its pg_dump first (pg_restore --dbname=...), then run restore again with --database-url naming that database',
      2,
    );
  }
  return databaseUrl;
}

/** The backup's ledger.pub, which its ledger is verified with. */
function backupLedgerKey(staging: string): VerifierKey {
  try {
    return readLedgerVerifierKey(staging);
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : `not a verifier key: ${(error as Error).message}`;
    throw new CliError(`the backup's ledger.pub is ${why}; nothing was restored`, 1, { cause: error });
  }
}

/**
 * The backup's ledger key must be the one --ledger-key pins, if given, and the directory's own, if
 * it has one (a directory is restored only with a backup of its own ledger). True when neither
 * vouches for it: the key is then trusted on first use.
 */
function checkLedgerKey(staging: string, dataDir: string, key: VerifierKey, pinned: VerifierKey | undefined): boolean {
  const same = (a: VerifierKey, b: VerifierKey) => a.name === b.name && a.keyHash.equals(b.keyHash);
  const named = (k: VerifierKey) => `${k.name}+${k.keyHash.toString('hex')}`;
  const own = existsSync(join(staging, 'keys', 'ledger.pem')) ? parseVerifierKey(loadLedgerSigner(staging).verifierKey) : undefined;
  if (own && !same(own, key)) throw new CliError("the backup's keys/ledger.pem is not the key of its ledger.pub; nothing was restored");
  if (pinned && !same(pinned, key)) {
    throw new CliError(
      `the backup's ledger key is ${named(key)}, not ${named(pinned)} given with --ledger-key: ` +
        'its ledger.pub, and so its ledger, is not the one you named; nothing was restored',
    );
  }
  if (!existsSync(join(dataDir, 'ledger.pub'))) return pinned === undefined;
  const existing = readLedgerVerifierKey(dataDir);
  if (!same(existing, key)) {
    throw new CliError(
      `${dataDir} belongs to another ledger (its ledger key is ${existing.name}, the backup's is ${key.name}): restore into a new directory; nothing was restored`,
    );
  }
  return false;
}

/** The checkpoints servers have seen: the directory's ledger.state and --seen-checkpoint, each checked with the ledger key (the pinned one, when given). */
function seenCheckpoints(dataDir: string, key: VerifierKey, keySource: string, seenFile: string | undefined): Seen[] {
  const seen: Seen[] = [];
  try {
    const own = readLedgerState(dataDir, key);
    if (own) seen.push({ checkpoint: own, source: `${ledgerStateFile(dataDir)}` });
  } catch (error) {
    throw new CliError(`${(error as Error).message}; nothing was restored`, 1, { cause: error });
  }
  if (seenFile !== undefined) {
    if (!existsSync(seenFile)) throw new CliError(`no checkpoint at ${seenFile} (--seen-checkpoint)`, 2);
    const text = readFileSync(seenFile, 'utf8');
    // A checkpoint note as GET /v1/ledger/checkpoint or service-fs checkpoint prints it, or a ledger.state file.
    const note = text.trimStart().startsWith('{') ? (JSON.parse(text) as { note?: unknown }).note : text;
    try {
      if (typeof note !== 'string') throw new Error('it holds no checkpoint note');
      const checkpoint = parseCheckpoint(openNote(note, key));
      if (checkpoint.origin !== key.name) throw new Error(`its origin is "${checkpoint.origin}", not "${key.name}"`);
      seen.push({ checkpoint: { size: checkpoint.size, root: checkpoint.root, note }, source: `the checkpoint in ${seenFile}` });
    } catch (error) {
      throw new CliError(`${seenFile} is not a checkpoint signed with ${keySource} (${key.name}): ${(error as Error).message}; nothing was restored`, 2, {
        cause: error,
      });
    }
  }
  return seen;
}

/** The largest seen checkpoint the backup's ledger does not extend, or undefined. */
async function notExtended(staging: string, databaseUrl: string | undefined, key: VerifierKey, seen: readonly Seen[]): Promise<Seen | undefined> {
  let worst: Seen | undefined;
  const store = openExistingStore(staging, databaseUrl);
  try {
    for (const s of seen) {
      const result = await checkLedger(store, key, { remembered: s.checkpoint });
      if (result.rollback && (!worst || s.checkpoint.size > worst.checkpoint.size)) worst = s;
    }
  } finally {
    await store.close();
  }
  return worst;
}

/**
 * Moves the unpacked members into the directory, replacing its store. ledger.state becomes the
 * newest checkpoint known to be extended, or, for a rollback to accept, the one rolled back from
 * (which `ledger accept-rollback` then records).
 */
function install(
  staging: string,
  dataDir: string,
  names: Iterable<string>,
  context: { rolledBack: Seen | undefined; seen: readonly Seen[]; databaseUrl: string | undefined },
): void {
  const store = sqliteFile(dataDir);
  for (const file of [store, `${store}-wal`, `${store}-shm`]) rmSync(file, { force: true });
  for (const name of names) {
    if (name === 'manifest.json' || name === 'ledger.state') continue;
    mkdirSync(dirname(join(dataDir, name)), { recursive: true, mode: 0o700 });
    renameSync(join(staging, name), join(dataDir, name));
  }
  if (context.databaseUrl) rememberDatabaseUrl(dataDir, context.databaseUrl);
  const key = readLedgerVerifierKey(dataDir);
  const backedUp = readLedgerState(staging, key);
  const newest = [...context.seen.map((s) => s.checkpoint), ...(backedUp ? [backedUp] : [])].sort((a, b) => b.size - a.size)[0];
  const remember = context.rolledBack?.checkpoint ?? newest;
  if (remember) writeLedgerState(dataDir, remember);
}
