/**
 * The server a benchmark measures, run as its own process so the load generator does not share its
 * event loop: the product's app (buildApp), seeded, plus one bare route on the same Fastify instance
 * as the baseline. Prints one JSON line with the URL and tokens, then serves.
 *
 * Environment: BENCH_DATABASE_URL selects PostgreSQL (else a SQLite file); BENCH_DATA_DIR reuses a
 * data directory (a second replica shares the first one's keys); BENCH_SEED=0 skips seeding.
 * `GET /bench/cpu` answers the process's CPU time, so the load generator can charge it per request.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/api/app.js';
import { makeIdSource, systemClock } from '../src/clock.js';
import { mintAdminToken } from '../src/control/admin-token.js';
import { issueToken } from '../src/control/tokens.js';
import { createTenant } from '../src/control/tenants.js';
import { createVm } from '../src/control/vms.js';
import { initDataDir, loadAdminKey } from '../src/config/data-dir.js';
import { preparePlatformKeys } from '../src/cli/keys.js';
import { openWritableStore } from '../src/cli/common.js';
import { LOCAL_OPERATOR } from '../src/ledger/entry.js';
import { encodeBase64url, generateKeyPair, privateKeyToPem, rawPublicKey, type KeyPair } from '../src/tokens/keys.js';

const dataDir = process.env.BENCH_DATA_DIR ?? join(mkdtempSync(join(tmpdir(), 'ppn-bench-')), '.ppn');
const seed = process.env.BENCH_SEED !== '0';
initDataDir(dataDir);
const store = await openWritableStore(dataDir, process.env.BENCH_DATABASE_URL);
const { keyring } = await preparePlatformKeys(store, dataDir);
const deps = { store, clock: systemClock, ids: makeIdSource(systemClock) };
const origin = { actor: LOCAL_OPERATOR, requestId: null };
const { token: adminToken } = await mintAdminToken(deps, keyring, loadAdminKey(dataDir).publicKey, 3600);

async function createBenchTenant(tenantId: string, maxVms: number): Promise<void> {
  await createTenant(deps, origin, {
    tenant_id: tenantId,
    display_name: tenantId,
    max_vms: maxVms,
    storage_quota_gb: 1_000_000,
    // Above the API's cap (100,000): a measurement must not be cut short by the tenant's own limit.
    api_rate_limit_rpm: 5_000_000,
    max_vcpus: null,
    max_memory_mb: null,
  });
}

/** A tenant-admin token held by `holder`; with `pop`, every request under it must be signed by the holder. */
async function adminTokenOf(tenantId: string, holder: KeyPair, pop: boolean): Promise<string> {
  const issued = await issueToken(deps, keyring, origin, {
    tenantId,
    subjectPubkey: encodeBase64url(rawPublicKey(holder.publicKey)),
    scopes: ['service:tenant-admin'],
    expiresInSeconds: 3600,
    limits: null,
    proofOfPossession: pop,
    issuedBy: null,
  });
  return issued.token;
}

let readToken = '';
let writeToken = '';
let popToken = '';
const popHolder = generateKeyPair();
if (seed) {
  await createBenchTenant('bench-read', 100);
  readToken = await adminTokenOf('bench-read', generateKeyPair(), false);
  popToken = await adminTokenOf('bench-read', popHolder, true);
  for (let i = 0; i < 50; i++) {
    await createVm(deps, origin, 'bench-read', { name: `vm-${i}`, vcpus: 2, memory_mb: 2048, disk_gb: 20, image: 'debian-12', node_id: null }, null);
  }
  await createBenchTenant('bench-write', 100_000);
  writeToken = await adminTokenOf('bench-write', generateKeyPair(), false);
}

const app = await buildApp({ store, keyring, clock: deps.clock, ids: deps.ids, logger: false });
// Baseline: the same bytes GET /v1/vms answers, precomputed, with no auth, no store, no serialisation.
let sameBytes = '';
app.get('/bench/bare', async (_request, reply) => reply.type('application/json').send(sameBytes));
// This process's CPU time, read by the load generator between measurements (one request each).
app.get('/bench/cpu', async () => process.cpuUsage());
if (seed) sameBytes = (await app.inject({ method: 'GET', url: '/v1/vms', headers: { authorization: `Bearer ${readToken}` } })).body;

const address = await app.listen({ host: '127.0.0.1', port: 0 });
// The pop token's private key goes to the load generator, which signs as a client would.
const popKeyPem = privateKeyToPem(popHolder.privateKey);
process.stdout.write(`${JSON.stringify({ url: address, adminToken, readToken, writeToken, popToken, popKeyPem, dataDir, listBytes: sameBytes.length })}\n`);
process.on(
  'SIGTERM',
  () =>
    void app
      .close()
      .then(() => store.close())
      .then(() => process.exit(0)),
);
