/**
 * Group commit as clients meet it (docs/design/store.md, "Group commit"): VM creates sent at the same
 * time over separate connections to a real `service-vm-tenant serve` process share commits, on
 * either store. On SQLite the driver is synchronous, so a batch started inside the first request's
 * turn would run to its COMMIT before the server had read the other requests: one commit per create.
 * The replica's own counters on /metrics tell how many writes its commits carried.
 */
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleValue } from '../support/metrics-text.js';
import { api, startServer, tempDataDir, type ServerProcess } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

const CONCURRENT = 40;

describe(`group commit over real HTTP (${TEST_STORE})`, () => {
  let server: ServerProcess;
  let token: string;

  beforeAll(async () => {
    server = await startServer(tempDataDir());
    const admin = { token: server.adminToken };
    const created = await api(server.url, 'POST', '/v1/tenants', {
      ...admin,
      body: { tenant_id: 'busy', display_name: 'Busy', max_vms: 1000, storage_quota_gb: 10_000, api_rate_limit_rpm: 10_000 },
    });
    expect(created.status).toBe(201);
    const issued = await api(server.url, 'POST', '/v1/tenants/busy/tokens', {
      ...admin,
      body: { subject_pubkey: generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, scope: 'tenant:input', expires_in_seconds: 3600 },
    });
    expect(issued.status).toBe(201);
    token = issued.body.token as string;
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function counters(): Promise<{ commits: number; writes: number }> {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    return { commits: sampleValue(text, 'ppn_store_commits_total')!, writes: sampleValue(text, 'ppn_store_committed_writes_total')! };
  }

  it(`${CONCURRENT} creates sent at once are all created, with fewer commits than creates`, async () => {
    const before = await counters();
    const answers = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) => api(server.url, 'POST', '/v1/vms', { token, body: { name: `vm-${i}`, vcpus: 1, memory_mb: 256, disk_gb: 1 } })),
    );
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 201));
    const after = await counters();
    const writes = after.writes - before.writes;
    const commits = after.commits - before.commits;
    // The scheduler's own writes may add to both; the creates are at least CONCURRENT of the writes.
    expect(writes).toBeGreaterThanOrEqual(CONCURRENT);
    expect(commits).toBeLessThan(writes);
  });
});
