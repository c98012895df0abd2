/** `service-vm-tenant admin-token`: mints a fresh platform-admin token from the data directory's keys. */
import { existsSync } from 'node:fs';
import { mintAdminToken } from '../control/admin-token.js';
import { loadAdminKey, sqliteFile } from '../config/data-dir.js';
import { preparePlatformKeys } from './keys.js';
import { CliError, controlDeps, openWritableStore } from './common.js';

export async function printAdminToken(dataDir: string, databaseUrl: string | undefined, expiresInSeconds: number): Promise<void> {
  if (!databaseUrl && !existsSync(sqliteFile(dataDir))) {
    throw new CliError(`no data directory at ${dataDir}: run "service-vm-tenant serve" once to create it`);
  }
  const store = await openWritableStore(dataDir, databaseUrl);
  try {
    const { keyring } = await preparePlatformKeys(store, dataDir);
    const { token } = await mintAdminToken(controlDeps(store), keyring, loadAdminKey(dataDir).publicKey, expiresInSeconds);
    process.stdout.write(`${token}\n`);
  } finally {
    await store.close();
  }
}
