/**
 * The data directory (default ./.ppn): the SQLite file and the keys. The directory is 0700 (a looser
 * one is tightened at start) and every file in it but ledger.pub is 0600: it holds the tenants, the
 * ledger and the keys that mint tokens. Layout:
 *
 *   ppn.sqlite                 the embedded store (with its -wal and -shm files)
 *   keys/keyset.kek            the key-encryption key sealing the platform keys kept in the store
 *   keys/platform-<kid>.pem    platform keys of a directory from before the key set moved into the
 *   keys/platform.active       store: imported at the next start, then removed (control/platform-keys.ts)
 *   keys/ledger.pem            the ledger checkpoint key, separate from the token keys
 *   ledger.pub                 its verifier key (C2SP signed-note form), public
 *   ledger.state               the latest checkpoint this server signed or verified (src/config/ledger-state.ts), 0600
 *   keys/admin.pem             the local operator's key: admin tokens are bound to it
 *   admin.token                a platform-admin token, written on first start
 *   nonces/<period>.log       request-signature nonces accepted lately, read back at start (src/api/nonce-journal.ts), 0600
 *   server.lock                held by the server using the directory, naming it (see lockDataDir)
 *   database.url               the PostgreSQL URL, when the state lives there (0600: it may hold a password)
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { writeSecretFile } from './secret-file.js';
import { acquireFileLock, LockHeldError } from '../store/sqlite/lock.js';
import { parseVerifierKey, verifierKeyText, type VerifierKey } from '../ledger/note.js';
import { decodeBase64url, generateKeyPair, keyId, privateKeyFromPem, privateKeyToPem } from '../tokens/keys.js';
import { KEK_BYTES } from '../tokens/seal.js';

export const DEFAULT_DATA_DIR = './.ppn';

export function resolveDataDir(option: string | undefined): string {
  return resolve(option ?? process.env.PPN_DATA_DIR ?? DEFAULT_DATA_DIR);
}

export function sqliteFile(dataDir: string): string {
  return join(dataDir, 'ppn.sqlite');
}

export function databaseUrlFile(dataDir: string): string {
  return join(dataDir, 'database.url');
}

/** The PostgreSQL URL remembered by an earlier `serve` on this directory, if any. */
export function rememberedDatabaseUrl(dataDir: string): string | undefined {
  const file = databaseUrlFile(dataDir);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
}

export function rememberDatabaseUrl(dataDir: string, url: string): void {
  writeSecretFile(databaseUrlFile(dataDir), `${url}\n`);
}

/** Forgets the remembered URL: the directory's state is in its SQLite file again. Returns whether there was one. */
export function forgetDatabaseUrl(dataDir: string): boolean {
  const file = databaseUrlFile(dataDir);
  if (!existsSync(file)) return false;
  rmSync(file);
  return true;
}

export function adminTokenFile(dataDir: string): string {
  return join(dataDir, 'admin.token');
}

/** Where a SQLite server journals the request-signature nonces it accepts (src/api/nonce-journal.ts). */
export function nonceJournalDir(dataDir: string): string {
  return join(dataDir, 'nonces');
}

function keysDir(dataDir: string): string {
  return join(dataDir, 'keys');
}

export { writeSecretFile } from './secret-file.js';

export interface InitResult {
  /** What had looser bits than 0700 and was tightened, e.g. "DIR (was 0755)". */
  tightened: string[];
}

/** Creates the directory (0700, tightening looser bits) and any missing key. */
export function initDataDir(dataDir: string): InitResult {
  mkdirSync(keysDir(dataDir), { recursive: true, mode: 0o700 });
  const tightened = [dataDir, keysDir(dataDir)].flatMap((dir) => {
    const was = statSync(dir).mode & 0o777;
    if (was === 0o700) return [];
    chmodSync(dir, 0o700);
    return [`${dir} (was 0${was.toString(8)})`];
  });
  const kek = kekFile(dataDir);
  if (!existsSync(kek)) writeSecretFile(kek, `${randomBytes(KEK_BYTES).toString('base64url')}\n`);
  for (const name of ['ledger.pem', 'admin.pem']) {
    const path = join(keysDir(dataDir), name);
    if (!existsSync(path)) writeSecretFile(path, privateKeyToPem(generateKeyPair().privateKey));
  }
  return { tightened };
}

function kekFile(dataDir: string): string {
  return join(keysDir(dataDir), 'keyset.kek');
}

/**
 * The key-encryption key that seals the platform keys in the store. Every replica's data directory
 * holds the same one (copied with keys/, docs/design/store.md); the database never does.
 */
export function loadKeyEncryptionKey(dataDir: string): Buffer {
  const file = kekFile(dataDir);
  if (!existsSync(file)) throw new Error(`no ${file}: start the server once with this data directory, or copy keys/ from a replica's data directory`);
  const kek = decodeBase64url(readFileSync(file, 'utf8').trim());
  if (!kek || kek.length !== KEK_BYTES) throw new Error(`${file} is not a ${KEK_BYTES}-byte key in base64url`);
  return kek;
}

/** Platform keys kept as files by a data directory from before the key set moved into the store. */
export interface LegacyPlatformKeys {
  keys: KeyObject[];
  activeKid: string | undefined;
  files: string[];
}

export function readLegacyPlatformKeys(dataDir: string): LegacyPlatformKeys {
  const dir = keysDir(dataDir);
  const names = readdirSync(dir).filter((name) => /^platform-[A-Za-z0-9_-]+\.pem$/.test(name));
  const activeFile = join(dir, 'platform.active');
  const activeKid = existsSync(activeFile) ? readFileSync(activeFile, 'utf8').trim() : undefined;
  return {
    keys: names.map((name) => privateKeyFromPem(readFileSync(join(dir, name), 'utf8'))),
    activeKid,
    files: [...names.map((name) => join(dir, name)), ...(activeKid === undefined ? [] : [activeFile])],
  };
}

/** The ledger's checkpoint-signing key and its public identity (origin and verifier key text). */
export function loadLedgerSigner(dataDir: string): { origin: string; key: KeyObject; verifierKey: string } {
  const key = privateKeyFromPem(readFileSync(join(keysDir(dataDir), 'ledger.pem'), 'utf8'));
  const origin = `ppn-ledger-${Buffer.from(keyId(createPublicKey(key)), 'base64url')
    .toString('hex')
    .slice(0, 8)}`;
  return { origin, key, verifierKey: verifierKeyText(origin, key) };
}

/** Publishes the ledger's verifier key as <data-dir>/ledger.pub, for anyone who checks checkpoints. */
export function writeLedgerPublicKey(dataDir: string): string {
  const { verifierKey } = loadLedgerSigner(dataDir);
  writeFileSync(join(dataDir, 'ledger.pub'), `${verifierKey}\n`);
  return verifierKey;
}

/** The published ledger key, as checkers read it. */
export function readLedgerVerifierKey(dataDir: string): VerifierKey {
  return parseVerifierKey(readFileSync(join(dataDir, 'ledger.pub'), 'utf8'));
}

export function loadAdminKey(dataDir: string): { privateKey: KeyObject; publicKey: KeyObject } {
  const privateKey = privateKeyFromPem(readFileSync(join(keysDir(dataDir), 'admin.pem'), 'utf8'));
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/**
 * One server per data directory: a second one would keep its own revocation list and rate-limit
 * windows. An OS-level lock on <data-dir>/server.lock (store/sqlite/lock.ts): the kernel drops it
 * when the server dies, even by kill -9, and a copy of the directory carries no lock. Returns the
 * release function.
 */
export function lockDataDir(dataDir: string, now: Date): () => void {
  try {
    return acquireFileLock(join(dataDir, 'server.lock'), { pid: process.pid, host: hostname(), started: now.toISOString() });
  } catch (error) {
    if (!(error instanceof LockHeldError)) throw error;
    const holder = error.holder
      ? ` (pid ${error.holder.pid} on host ${error.holder.host}, started ${error.holder.started})`
      : ' (starting up: it has not named itself yet)';
    throw new Error(`another server${holder} holds the lock on ${error.file}; stop it first, or give this one its own --data-dir`, { cause: error });
  }
}
