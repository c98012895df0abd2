/**
 * `service-vm-tenant keys list | rotate | retire KID`: the platform key set, changed in the store
 * directly (like admin-token), so they work while servers run: every server picks the change up
 * from the ledger within a second (control/platform-keys.ts).
 */
import { existsSync, rmSync } from 'node:fs';
import { loadKeyEncryptionKey, readLegacyPlatformKeys, sqliteFile } from '../config/data-dir.js';
import { ensureKeySet, LiveKeyring, retirePlatformKey, rotatePlatformKey } from '../control/platform-keys.js';
import { listPublicPlatformKeys } from '../store/platform-keys.js';
import type { Store } from '../store/store.js';
import { KeySetError } from '../tokens/keyring.js';
import { SealError } from '../tokens/seal.js';
import { CliError, controlDeps, openWritableStore } from './common.js';

/**
 * The server's keyring at start (and the CLI's): imports platform keys the data directory still
 * keeps as files, removing the files once the store holds them, and makes the first key on a first
 * start (`created`).
 */
export async function preparePlatformKeys(store: Store, dataDir: string): Promise<{ keyring: LiveKeyring; created: boolean }> {
  const kek = loadKeyEncryptionKey(dataDir);
  const legacy = readLegacyPlatformKeys(dataDir);
  const { created } = await ensureKeySet(controlDeps(store), kek, legacy);
  for (const file of legacy.files) rmSync(file);
  try {
    return { keyring: await LiveKeyring.load(store.db, kek), created };
  } catch (error) {
    if (error instanceof SealError && error.code === 'wrong_kek') {
      throw new CliError(
        `${error.message}: this data directory's keys/keyset.kek is not the one the store's key set was sealed with; ` +
          'copy keys/ from the data directory of the first server on this database',
        1,
        { cause: error },
      );
    }
    throw error;
  }
}

async function withKeyStore<T>(dataDir: string, databaseUrl: string | undefined, work: (store: Store) => Promise<T>): Promise<T> {
  if (!databaseUrl && !existsSync(sqliteFile(dataDir))) {
    throw new CliError(`no data directory at ${dataDir}: run "service-vm-tenant serve" once to create it`);
  }
  const store = await openWritableStore(dataDir, databaseUrl);
  try {
    await preparePlatformKeys(store, dataDir);
    return await work(store);
  } catch (error) {
    if (error instanceof KeySetError || error instanceof SealError) throw new CliError(error.message, 1, { cause: error });
    throw error;
  } finally {
    await store.close();
  }
}

export function listKeys(dataDir: string, databaseUrl: string | undefined, json: boolean): Promise<void> {
  return withKeyStore(dataDir, databaseUrl, async (store) => {
    const rows = await listPublicPlatformKeys(store.db);
    if (json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return;
    }
    const lines = [['KID', 'STATE', 'CREATED', 'RETIRED'], ...rows.map((r) => [r.kid, r.state, r.created_at, r.retired_at ?? '-'])];
    const widths = lines[0]!.map((_, i) => Math.max(...lines.map((line) => line[i]!.length)));
    for (const line of lines)
      process.stdout.write(
        `${line
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
      );
  });
}

export function rotateKey(dataDir: string, databaseUrl: string | undefined): Promise<void> {
  return withKeyStore(dataDir, databaseUrl, async (store) => {
    const { kid, previousKid } = await rotatePlatformKey(controlDeps(store), loadKeyEncryptionKey(dataDir));
    process.stderr.write(`key ${kid} is active; ${previousKid} still verifies until "keys retire ${previousKid}"\n`);
    process.stdout.write(`${kid}\n`);
  });
}

export async function retireKey(dataDir: string, databaseUrl: string | undefined, kid: string): Promise<void> {
  if (!/^[A-Za-z0-9_-]{11}$/.test(kid)) throw new CliError(`"${kid}" is not a key id: a kid is 11 characters of base64url, as "keys list" prints it`, 2);
  await withKeyStore(dataDir, databaseUrl, async (store) => {
    const { retiredAt, already } = await retirePlatformKey(controlDeps(store), kid);
    process.stdout.write(already ? `key ${kid} was retired already, at ${retiredAt}\n` : `retired key ${kid}: tokens it signed are refused from now on\n`);
  });
}
