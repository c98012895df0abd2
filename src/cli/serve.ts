/** `service-vm-tenant serve`: the API server on the embedded store. */
import { existsSync } from 'node:fs';
import { buildApp } from '../api/app.js';
import { mintAdminToken, DEFAULT_ADMIN_TOKEN_SECONDS } from '../control/admin-token.js';
import {
  adminTokenFile,
  initDataDir,
  loadAdminKey,
  loadKeyring,
  loadLedgerSigner,
  lockDataDir,
  rememberDatabaseUrl,
  writeLedgerPublicKey,
  writeSecretFile,
} from '../config/data-dir.js';
import { CliError, controlDeps, openWritableStore } from './common.js';

export const DEFAULT_LISTEN = '127.0.0.1:9221';

export interface ServeOptions {
  dataDir: string;
  /** PostgreSQL URL; undefined keeps the data directory's SQLite file. */
  databaseUrl?: string;
  listen: string;
  logLevel: string;
}

export function parseListen(text: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new CliError(`--listen wants HOST:PORT, e.g. ${DEFAULT_LISTEN}; got "${text}"`, 2);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

/** PPN_REVOCATION_POLL_MS tunes the revocation poll (milliseconds, 50 to 600000). */
function pollMsFromEnv(): number | undefined {
  const text = process.env.PPN_REVOCATION_POLL_MS;
  if (text === undefined) return undefined;
  const ms = Number(text);
  if (!Number.isSafeInteger(ms) || ms < 50 || ms > 600_000) throw new CliError('PPN_REVOCATION_POLL_MS must be a whole number from 50 to 600000', 2);
  return ms;
}

export async function serve(options: ServeOptions): Promise<void> {
  const { host, port } = parseListen(options.listen);
  const fresh = initDataDir(options.dataDir);
  const unlock = lockDataDir(options.dataDir);
  process.on('exit', unlock);
  if (options.databaseUrl) rememberDatabaseUrl(options.dataDir, options.databaseUrl);
  const store = await openWritableStore(options.dataDir, options.databaseUrl);
  const keyring = loadKeyring(options.dataDir);
  const deps = controlDeps(store);

  const tokenFile = adminTokenFile(options.dataDir);
  if (fresh || !existsSync(tokenFile)) {
    const { token, row } = await mintAdminToken(deps, keyring, loadAdminKey(options.dataDir).publicKey, DEFAULT_ADMIN_TOKEN_SECONDS);
    writeSecretFile(tokenFile, `${token}\n`);
    process.stdout.write(`wrote a platform-admin token (${row.token_id}, expires ${row.expires_at}) to ${tokenFile}\n`);
  }

  writeLedgerPublicKey(options.dataDir);
  const app = await buildApp({
    store,
    keyring,
    clock: deps.clock,
    ids: deps.ids,
    logger: { level: options.logLevel },
    runBackgroundWork: true,
    revocationPollMs: pollMsFromEnv(),
    ledgerSigner: loadLedgerSigner(options.dataDir),
    ledgerStateDir: options.dataDir,
  });
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing requests in flight');
    await app.close();
    await store.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  const address = await app.listen({ host, port });
  process.stdout.write(`service-vm-tenant listening on ${address} (data: ${options.dataDir}, store: ${store.location})\n`);
}
