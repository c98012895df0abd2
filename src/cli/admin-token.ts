/** `service-vm-tenant admin-token`: mints a fresh platform-admin token from the data directory's keys. */
import { existsSync } from 'node:fs';
import { mintAdminToken, mintSharedNodeToken } from '../control/admin-token.js';
import { encodeBase64url, parsePublicKeyText } from '../tokens/keys.js';
import { loadAdminKey, sqliteFile } from '../config/data-dir.js';
import { preparePlatformKeys } from './keys.js';
import { CliError, controlDeps, openWritableStore } from './common.js';

/** `--scope node:agent --subject PUB`: a shared fleet node's token instead (docs/design/fleet.md). */
export interface SharedNodeRequest {
  subject: string;
}

export async function printAdminToken(dataDir: string, databaseUrl: string | undefined, expiresInSeconds: number, sharedNode?: SharedNodeRequest): Promise<void> {
  const nodeKey = sharedNode ? parsePublicKeyText(sharedNode.subject) : null;
  if (sharedNode && !nodeKey) throw new CliError('--subject wants the node\'s public key as "service-vm-host init" printed it (32 bytes, base64url)', 2);
  if (!databaseUrl && !existsSync(sqliteFile(dataDir))) {
    throw new CliError(`no data directory at ${dataDir}: run "service-vm-tenant serve" once to create it`);
  }
  const store = await openWritableStore(dataDir, databaseUrl);
  try {
    const { keyring } = await preparePlatformKeys(store, dataDir);
    const { token } = nodeKey
      ? await mintSharedNodeToken(controlDeps(store), keyring, encodeBase64url(nodeKey), expiresInSeconds)
      : await mintAdminToken(controlDeps(store), keyring, loadAdminKey(dataDir).publicKey, expiresInSeconds);
    process.stdout.write(`${token}\n`);
  } finally {
    await store.close();
  }
}
