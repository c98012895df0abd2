/**
 * Test harness: the real app (buildApp) over a real store (a SQLite file in a temporary data
 * directory, or a fresh PostgreSQL database when PPN_TEST_STORE=postgres: see stores.ts), with
 * real Ed25519 keys, driven through Fastify's inject (real HTTP parsing, no socket). Tests that need
 * a real process and port use server-process.ts instead.
 */
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { buildApp, type AppOptions } from '../../src/api/app.js';
import type { TypedApp } from '../../src/api/deps.js';
import { ManualClock, makeIdSource, type Clock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import { mintAdminToken } from '../../src/control/admin-token.js';
import { initDataDir, loadAdminKey, rememberDatabaseUrl } from '../../src/config/data-dir.js';
import { preparePlatformKeys } from '../../src/cli/keys.js';
import { expectDocumentedAnswer } from './documented-answers.js';
import { dropDatabase, freshDatabaseUrl } from './stores.js';
import { openWritableStore } from '../../src/cli/common.js';
import { countEntries, readEntries } from '../../src/store/ledger.js';
import { integrateEntries } from '../../src/store/ledger-tree.js';
import type { Store } from '../../src/store/store.js';
import type { LiveKeyring } from '../../src/control/platform-keys.js';
import { encodeBase64url, generateKeyPair, rawPublicKey, type KeyPair } from '../../src/tokens/keys.js';

/** A stand-in for the built web console, so API tests serve /console/ without `npm run build`. */
export const CONSOLE_FIXTURE = resolve('test/fixtures/console');

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Sent as-is instead of JSON-encoding `body`. */
  payload?: string | Buffer;
  headers?: Record<string, string>;
  /** Signs the request as `ppn` does (RFC 9421, SPEC §5) with this holder key, by the harness clock. */
  signWith?: KeyObject;
}

export interface Harness {
  app: TypedApp;
  store: Store;
  keyring: LiveKeyring;
  clock: Clock;
  dataDir: string;
  adminToken: string;
  request(method: string, url: string, options?: RequestOptions): Promise<LightMyRequestResponse>;
  createTenant(tenantId: string, limits?: Record<string, unknown>): Promise<void>;
  /** Issues a token for a fresh key pair; returns the token and the holder's keys. */
  issueToken(tenantId: string, scope: string | string[], expiresIn?: number): Promise<{ token: string; tokenId: string; keys: KeyPair }>;
  ledgerCount(): Promise<number>;
  ledgerLines(filter?: Parameters<typeof readEntries>[1]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** App options a test may set; the harness supplies the store, keys, clock and ids. */
export type HarnessAppOptions = Omit<AppOptions, 'store' | 'keyring' | 'clock' | 'ids'>;

export async function startHarness(options: { clock?: Clock; app?: HarnessAppOptions } = {}): Promise<Harness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ppn-test-'));
  initDataDir(dataDir);
  const databaseUrl = await freshDatabaseUrl();
  if (databaseUrl) rememberDatabaseUrl(dataDir, databaseUrl);
  const store = await openWritableStore(dataDir, databaseUrl);
  const { keyring } = await preparePlatformKeys(store, dataDir);
  const clock = options.clock ?? new ManualClock(Date.now());
  const ids = makeIdSource(clock);
  const { token: adminToken } = await mintAdminToken({ store, clock, ids }, keyring, loadAdminKey(dataDir).publicKey, 30 * 24 * 3600);
  const app = await buildApp({ consoleDirectory: CONSOLE_FIXTURE, ...options.app, store, keyring, clock, ids });

  const request: Harness['request'] = async (method, url, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    let payload = opts.payload;
    if (payload === undefined && opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    if (opts.signWith) {
      const body = payload === undefined ? undefined : Buffer.from(payload);
      Object.assign(headers, signRequest({ method, ...splitTarget(url), headers, body }, { privateKey: opts.signWith, clock }));
    }
    const response = await app.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) });
    expectDocumentedAnswer(app, method, url, response.statusCode);
    // The harness's app runs no background work: stand in for the leader's integrator, which a
    // write wakes, so proofs cover what the request sequenced as they would a moment later. A 503
    // sequenced nothing (the store was unavailable: the integrator would only retry later).
    if (method !== 'GET' && method !== 'HEAD' && response.statusCode !== 503) await integrateEntries(store);
    return response;
  };

  const harness: Harness = {
    app,
    store,
    keyring,
    clock,
    dataDir,
    adminToken,
    request,
    async createTenant(tenantId, limits = {}) {
      const res = await request('POST', '/v1/tenants', {
        token: adminToken,
        body: { tenant_id: tenantId, display_name: `Tenant ${tenantId}`, max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 10_000, ...limits },
      });
      if (res.statusCode !== 201) throw new Error(`creating tenant ${tenantId}: ${res.statusCode} ${res.body}`);
    },
    async issueToken(tenantId, scope, expiresIn = 3600) {
      const keys = generateKeyPair();
      const res = await request('POST', `/v1/tenants/${tenantId}/tokens`, {
        token: adminToken,
        body: { subject_pubkey: encodeBase64url(rawPublicKey(keys.publicKey)), scope, expires_in_seconds: expiresIn },
      });
      if (res.statusCode !== 201) throw new Error(`issuing token: ${res.statusCode} ${res.body}`);
      const body = res.json<{ token: string; token_id: string }>();
      return { token: body.token, tokenId: body.token_id, keys };
    },
    ledgerCount: () => countEntries(store.db),
    async ledgerLines(filter = { limit: 100_000 }) {
      return (await readEntries(store.db, filter)).map((e) => JSON.parse(e.line) as Record<string, unknown>);
    },
    async close() {
      await app.close();
      await store.close();
      await dropDatabase(databaseUrl);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

export function publicKeyText(keys: KeyPair): string {
  return encodeBase64url(rawPublicKey(keys.publicKey));
}

/** Stores an entry row with exactly these bytes at `index`, as a database writer could, bypassing appendEntry. */
export async function insertEntryRow(store: Store, index: number, line: string, tenantId: string | null): Promise<void> {
  await store.db
    .insertInto('ledger_entries')
    .values({
      idx: index,
      ts: '2026-01-01T00:00:00.000Z',
      event_type: 'VM_CREATED',
      tenant_id: tenantId,
      vm_id: null,
      node_id: null,
      token_id: null,
      actor_token_id: null,
      entry: line,
    })
    .execute();
}
