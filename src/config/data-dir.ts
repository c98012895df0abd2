/**
 * The data directory (default ./.ppn): the SQLite file and the keys. Keys are created on first use
 * with mode 0600 in a 0700 directory. Layout:
 *
 *   ppn.sqlite                 the embedded store
 *   keys/platform-<kid>.pem    platform token-signing keys (Ed25519, PKCS#8)
 *   keys/platform.active       the kid that signs new tokens
 *   keys/ledger.pem            the ledger checkpoint key, separate from the token keys
 *   ledger.pub                 its verifier key (C2SP signed-note form), public
 *   ledger.state               the latest checkpoint this server signed or verified (src/config/ledger-state.ts), 0600
 *   keys/admin.pem             the local operator's key: admin tokens are bound to it
 *   admin.token                a platform-admin token, written on first start
 *   server.pid                 the pid of the server using the directory (see lockDataDir)
 *   database.url               the PostgreSQL URL, when the state lives there (0600: it may hold a password)
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { parseVerifierKey, verifierKeyText, type VerifierKey } from '../ledger/note.js';
import { buildKeyring, type PlatformKeyring } from '../tokens/keyring.js';
import { generateKeyPair, keyId, privateKeyFromPem, privateKeyToPem } from '../tokens/keys.js';

export const DEFAULT_DATA_DIR = './.ppn';

export function resolveDataDir(option: string | undefined): string {
  return resolve(option ?? process.env.PPN_DATA_DIR ?? DEFAULT_DATA_DIR);
}

export function sqliteFile(dataDir: string): string {
  return join(dataDir, 'ppn.sqlite');
}

/**
 * Where the directory's state lives: the --database-url option, else PPN_DATABASE_URL, else the
 * URL remembered in the directory by the last `serve` that was given one; undefined means SQLite.
 */
export function resolveDatabaseUrl(dataDir: string, option: string | undefined): string | undefined {
  const given = option ?? process.env.PPN_DATABASE_URL;
  if (given) return given;
  const file = join(dataDir, 'database.url');
  return existsSync(file) ? readFileSync(file, 'utf8').trim() || undefined : undefined;
}

export function rememberDatabaseUrl(dataDir: string, url: string): void {
  writeSecretFile(join(dataDir, 'database.url'), `${url}\n`);
}

export function adminTokenFile(dataDir: string): string {
  return join(dataDir, 'admin.token');
}

function keysDir(dataDir: string): string {
  return join(dataDir, 'keys');
}

/** Writes a secret: created 0600, and chmod'ed in case it existed with looser bits. */
export function writeSecretFile(path: string, contents: string): void {
  writeFileSync(path, contents, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Creates the directory and any missing key. Returns true when the platform key was new. */
export function initDataDir(dataDir: string): boolean {
  mkdirSync(keysDir(dataDir), { recursive: true, mode: 0o700 });
  let created = false;
  if (!existsSync(join(keysDir(dataDir), 'platform.active'))) {
    const { privateKey, publicKey } = generateKeyPair();
    const kid = keyId(publicKey);
    writeSecretFile(join(keysDir(dataDir), `platform-${kid}.pem`), privateKeyToPem(privateKey));
    writeFileSync(join(keysDir(dataDir), 'platform.active'), `${kid}\n`);
    created = true;
  }
  for (const name of ['ledger.pem', 'admin.pem']) {
    const path = join(keysDir(dataDir), name);
    if (!existsSync(path)) writeSecretFile(path, privateKeyToPem(generateKeyPair().privateKey));
  }
  return created;
}

export function loadKeyring(dataDir: string): PlatformKeyring {
  const dir = keysDir(dataDir);
  if (!existsSync(join(dir, 'platform.active'))) {
    throw new Error(`no platform keys in ${dataDir}: start the server once with this data directory to create them`);
  }
  const keys = readdirSync(dir)
    .filter((name) => /^platform-[A-Za-z0-9_-]+\.pem$/.test(name))
    .map((name) => privateKeyFromPem(readFileSync(join(dir, name), 'utf8')));
  const active = readFileSync(join(dir, 'platform.active'), 'utf8').trim();
  return buildKeyring(keys, active);
}

/** The ledger's checkpoint-signing key and its public identity (origin and verifier key text). */
export function loadLedgerSigner(dataDir: string): { origin: string; key: KeyObject; verifierKey: string } {
  const key = privateKeyFromPem(readFileSync(join(keysDir(dataDir), 'ledger.pem'), 'utf8'));
  const origin = `ppn-ledger-${Buffer.from(keyId(createPublicKey(key)), 'base64url').toString('hex').slice(0, 8)}`;
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
 * windows. The pid file is taken with O_EXCL; one left by a dead process (kill -9) is taken over.
 * Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, 'server.pid');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = Number(readFileSync(path, 'utf8').trim());
      if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new Error(`another server (pid ${holder}) is using ${dataDir}; stop it first`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new Error(`could not lock ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
