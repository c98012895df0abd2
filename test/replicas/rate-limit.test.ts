/**
 * The per-tenant rate limit holds across replicas (SPEC §1: within 5%): with api_rate_limit_rpm=120,
 * a burst spread over two replicas admits 120 − 5% to 120 within the minute: replicas lease slots
 * from one window, so on one clock they never admit more than the limit. Per-process windows would
 * admit up to 240.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { api, replicaDataDir, startServer, type ServerProcess } from '../support/server-process.js';

describe('rate limit across replicas', () => {
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    a = await startServer();
    b = await startServer(replicaDataDir(a.dataDir));
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  it('a burst of 300 requests over two replicas against 120 per minute admits at most 120, and no fewer than 114', async () => {
    const tenant = await api(a.url, 'POST', '/v1/tenants', {
      token: a.adminToken,
      body: { tenant_id: 'burst-co', display_name: 'Burst', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 120 },
    });
    expect(tenant.status).toBe(201);
    const issued = await api(a.url, 'POST', '/v1/tenants/burst-co/tokens', {
      token: a.adminToken,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(generateKeyPair().publicKey)), scope: 'tenant:read', expires_in_seconds: 600 },
    });
    const token = issued.body.token as string;

    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => api(i % 2 === 0 ? a.url : b.url, 'GET', '/v1/vms', { token })));
    // The whole burst fits in the minute, so nothing admitted early has left the window yet.
    expect(Date.now() - started).toBeLessThan(60_000);
    const admitted = answers.filter((r) => r.status === 200).length;
    const limited = answers.filter((r) => r.status === 429);
    expect(admitted + limited.length).toBe(300);
    expect(admitted).toBeGreaterThanOrEqual(114);
    expect(admitted).toBeLessThanOrEqual(120);
    for (const r of limited) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.headers.get('ratelimit-policy')).toBe('"tenant";q=120;w=60');
    }
    // Both replicas did admit some: the limit was shared, not served by one side alone.
    const admittedBy = (even: boolean) => answers.filter((r, i) => r.status === 200 && (i % 2 === 0) === even).length;
    expect(admittedBy(true)).toBeGreaterThan(0);
    expect(admittedBy(false)).toBeGreaterThan(0);
  });
});
