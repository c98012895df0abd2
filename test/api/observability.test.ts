/**
 * What an operator sees: one log line per request (with the tenant and token once the token is
 * verified, and the error code when the request was refused), and /metrics with the process's
 * default metrics and per-tenant refusal counters, whose tenant ids only a platform admin may see
 * (SPEC §3).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ledgerChecked, ledgerProblemOf } from '../../src/api/app.js';
import type { ManualClock } from '../../src/clock.js';
import { captureLog, type LogCapture } from '../support/log-capture.js';
import { startHarness, type Harness } from '../support/harness.js';
import { sampleValue } from '../support/metrics-text.js';

const A = 'acme';
const B = 'beta';
const C = 'gamma';

describe('request log', () => {
  let h: Harness;
  let log: LogCapture;
  let reader: { token: string; tokenId: string };
  let counter = 0;

  beforeAll(async () => {
    log = captureLog();
    h = await startHarness({ app: { logger: log.logger } });
    await h.createTenant(A, { api_rate_limit_rpm: 3 });
    reader = await h.issueToken(A, 'tenant:read');
  });
  afterAll(async () => {
    await h.close();
  });

  /** Sends a request with a fresh request id and returns the log lines written for it. */
  async function logged(method: string, url: string, token?: string): Promise<{ status: number; lines: Record<string, unknown>[] }> {
    const requestId = `log-test-${++counter}`;
    const res = await h.request(method, url, { ...(token !== undefined ? { token } : {}), headers: { 'x-request-id': requestId } });
    await expect.poll(() => log.linesFor(requestId).length).toBeGreaterThan(0);
    return { status: res.statusCode, lines: log.linesFor(requestId) };
  }

  it('a successful request logs one line with method, route, status, duration, request id, tenant and token id', async () => {
    const { status, lines } = await logged('GET', '/v1/vms?limit=5', reader.token);
    expect(status).toBe(200);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request completed', method: 'GET', route: '/v1/vms', status: 200, tenant: A, token_id: reader.tokenId });
    expect(typeof lines[0]!.ms).toBe('number');
    expect(lines[0]!.code).toBeUndefined();
  });

  it('a public request logs one line without a tenant', async () => {
    const { lines } = await logged('GET', '/healthz');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'request completed', route: '/healthz', status: 200 });
    expect(lines[0]!.tenant).toBeUndefined();
  });

  it('a request with a token that does not verify logs one refusal line with its code', async () => {
    const { lines } = await logged('GET', '/v1/vms', 'garbage');
    expect(lines).toEqual([expect.objectContaining({ msg: 'request refused', method: 'GET', route: '/v1/vms', status: 401, code: 'unauthenticated' })]);
    expect(lines[0]!.token_id).toBeUndefined();
  });

  it('a revoked token is refused with its tenant and token id in the line', async () => {
    const revoked = await h.issueToken(A, 'tenant:read');
    expect((await h.request('DELETE', `/v1/tenants/${A}/tokens/${revoked.tokenId}`, { token: h.adminToken })).statusCode).toBe(200);
    const { lines } = await logged('GET', '/v1/vms', revoked.token);
    expect(lines).toEqual([expect.objectContaining({ msg: 'request refused', status: 401, code: 'unauthenticated', tenant: A, token_id: revoked.tokenId })]);
  });

  it('a 403 logs one line with tenant, route, method, token id and code', async () => {
    const { lines } = await logged('POST', '/v1/vms', reader.token);
    expect(lines).toEqual([
      expect.objectContaining({ msg: 'request refused', method: 'POST', route: '/v1/vms', status: 403, code: 'forbidden', tenant: A, token_id: reader.tokenId }),
    ]);
  });

  it('a 429 for the rate limit logs one line with tenant, token id and code', async () => {
    (h.clock as ManualClock).advance(61_000);
    const statuses: number[] = [];
    let last: Record<string, unknown>[] = [];
    for (let i = 0; i < 4; i++) {
      const { status, lines } = await logged('GET', '/v1/whoami', reader.token);
      statuses.push(status);
      last = lines;
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(last).toEqual([
      expect.objectContaining({ msg: 'request refused', route: '/v1/whoami', status: 429, code: 'rate_limited', tenant: A, token_id: reader.tokenId }),
    ]);
  });

  it('a 405 and a 404 each log one line', async () => {
    expect((await logged('PUT', '/v1/vms')).lines).toEqual([expect.objectContaining({ status: 405, code: 'method_not_allowed' })]);
    expect((await logged('GET', '/v1/nowhere')).lines).toEqual([expect.objectContaining({ status: 404, code: 'not_found', route: 'unmatched', path: '/v1/nowhere' })]);
  });

  it('a path parameter over the limit logs one line', async () => {
    expect((await logged('GET', `/v1/vms/${'a'.repeat(101)}`, reader.token)).lines).toEqual([expect.objectContaining({ status: 414, code: 'uri_too_long' })]);
  });
});

describe('/metrics', () => {
  let h: Harness;
  let tenantAdmin: string;

  beforeAll(async () => {
    h = await startHarness({ app: { maxTenantMetricLabels: 2 } });
    for (const tenant of [A, B, C]) {
      await h.createTenant(tenant, { max_vms: 0, api_rate_limit_rpm: 1 });
    }
    tenantAdmin = (await h.issueToken(A, 'service:tenant-admin')).token;
    // One quota refusal and one rate-limit refusal per tenant, A first, so A and B get labels and C
    // is past the cap.
    for (const tenant of [A, B, C]) {
      const { token } = await h.issueToken(tenant, 'tenant:input');
      expect((await h.request('POST', '/v1/vms', { token, body: {} })).statusCode).toBe(429);
      expect((await h.request('GET', '/v1/whoami', { token })).statusCode).toBe(429);
    }
  });
  afterAll(async () => {
    await h.close();
  });

  const metrics = async (token?: string) => {
    const res = await h.request('GET', '/metrics', token !== undefined ? { token } : {});
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    return res.body;
  };

  it("includes the process's default metrics", async () => {
    const text = await metrics();
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
    expect(text).toContain('ppn_http_requests_total{method="POST",route="/v1/vms",status="429"} 3');
  });

  it('shows a platform admin refusals per tenant, with tenants past the cap counted as "other"', async () => {
    const text = await metrics(h.adminToken);
    expect(text).toContain(`ppn_quota_refusals_total{tenant="${A}"} 1`);
    expect(text).toContain(`ppn_quota_refusals_total{tenant="${B}"} 1`);
    expect(text).toContain('ppn_quota_refusals_total{tenant="other"} 1');
    expect(text).toContain(`ppn_rate_limit_refusals_total{tenant="${A}"} 1`);
    expect(text).toContain('ppn_rate_limit_refusals_total{tenant="other"} 1');
    expect(text).not.toContain(`tenant="${C}"`);
  });

  it.each([
    ['no token', () => undefined],
    ["a tenant admin's token", () => tenantAdmin],
  ])('shows %s no tenant identifier at all', async (_who, token) => {
    (h.clock as ManualClock).advance(61_000); // the tenant's one request a minute
    const text = await metrics(token());
    expect(text).not.toMatch(/tenant=/);
    for (const tenant of [A, B, C]) expect(text).not.toContain(tenant);
    expect(text).not.toContain('ppn_quota_refusals_total');
    expect(text).not.toContain('ppn_tenant_usage');
    expect(text).not.toContain('ppn_tenant_limit');
  });

  it('answers 401 to a token that does not verify', async () => {
    const res = await h.request('GET', '/metrics', { token: 'garbage' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="ppn", error="invalid_token"');
  });

  it("drops a deleted tenant's series and frees its label", async () => {
    expect((await h.request('DELETE', `/v1/tenants/${B}`, { token: h.adminToken })).statusCode).toBe(204);
    const { token } = await h.issueToken(C, 'tenant:input');
    (h.clock as ManualClock).advance(61_000);
    expect((await h.request('POST', '/v1/vms', { token, body: {} })).statusCode).toBe(429);
    const text = await metrics(h.adminToken);
    expect(text).not.toContain(`tenant="${B}"`);
    expect(text).toContain(`ppn_quota_refusals_total{tenant="${C}"} 1`);
  });
});

describe('per-tenant usage and limits on /metrics', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({ app: { maxTenantMetricLabels: 1 } });
    await h.createTenant(A, { max_vms: 5, storage_quota_gb: 50, max_vcpus: 8, max_memory_mb: 4096, api_rate_limit_rpm: 100 });
    await h.createTenant(B, { max_vms: 4, storage_quota_gb: 40, max_vcpus: 4, api_rate_limit_rpm: 100 });
    await h.createTenant(C, { max_vms: 3, storage_quota_gb: 30, max_vcpus: 2, max_memory_mb: 2048, api_rate_limit_rpm: 100 });
    const vms: [string, number][] = [
      [A, 2],
      [B, 1],
      [C, 1],
    ];
    for (const [tenant, n] of vms) {
      for (let i = 0; i < n; i++) {
        const res = await h.request('POST', `/v1/vms?tenant_id=${tenant}`, { token: h.adminToken, body: { name: `vm-${i}`, vcpus: 2, memory_mb: 1024, disk_gb: 10 } });
        expect(res.statusCode, res.body).toBe(201);
      }
    }
    // Three requests under acme's own token (the platform admin's count against no tenant's rate).
    const { token } = await h.issueToken(A, 'tenant:read');
    for (let i = 0; i < 3; i++) expect((await h.request('GET', '/v1/whoami', { token })).statusCode).toBe(200);
  });
  afterAll(async () => {
    await h.close();
  });

  const adminScrape = async () => (await h.request('GET', '/metrics', { token: h.adminToken })).body;
  const series = (text: string, name: string, tenant: string) =>
    Object.fromEntries(['vms', 'storage_gb', 'vcpus', 'memory_mb', 'api_rate_rpm'].map((resource) => [resource, sampleValue(text, name, { tenant, resource })]));

  it("shows a platform admin each tenant's usage beside its limits, and no limit where it has none", async () => {
    const text = await adminScrape();
    expect(series(text, 'ppn_tenant_usage', A)).toEqual({ vms: 2, storage_gb: 20, vcpus: 4, memory_mb: 2048, api_rate_rpm: 3 });
    expect(series(text, 'ppn_tenant_limit', A)).toEqual({ vms: 5, storage_gb: 50, vcpus: 8, memory_mb: 4096, api_rate_rpm: 100 });
  });

  it('adds up the tenants past the label cap under "other", with no limit for a resource one of them has none of', async () => {
    const text = await adminScrape();
    expect(series(text, 'ppn_tenant_usage', 'other')).toEqual({ vms: 2, storage_gb: 20, vcpus: 4, memory_mb: 2048, api_rate_rpm: 0 });
    expect(series(text, 'ppn_tenant_limit', 'other')).toEqual({ vms: 7, storage_gb: 70, vcpus: 6, memory_mb: undefined, api_rate_rpm: 200 });
    expect(text).not.toContain(`tenant="${B}"`);
    expect(text).not.toContain(`tenant="${C}"`);
  });

  it('the rate usage is the requests in the current window: a minute later it is 0', async () => {
    (h.clock as ManualClock).advance(61_000);
    expect(sampleValue(await adminScrape(), 'ppn_tenant_usage', { tenant: A, resource: 'api_rate_rpm' })).toBe(0);
  });

  it('a VM deleted shows at once in the usage', async () => {
    const list = (await h.request('GET', `/v1/vms?tenant_id=${A}`, { token: h.adminToken })).json<{ items: { vm_id: string }[] }>();
    expect((await h.request('DELETE', `/v1/vms/${list.items[0]!.vm_id}?tenant_id=${A}`, { token: h.adminToken })).statusCode).toBeLessThan(300);
    const text = await adminScrape();
    expect(sampleValue(text, 'ppn_tenant_usage', { tenant: A, resource: 'vms' })).toBe(1);
  });
});

describe('the start-up check on /metrics', () => {
  it('in the background, begins only once the app is ready, not while its routes are still being built', async () => {
    const h = await startHarness({ app: { checkLedgerInBackground: true } });
    try {
      let ended = false;
      void ledgerChecked(h.app).then(() => (ended = true));
      // A tiny ledger is checked in milliseconds once the check begins.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(ended).toBe(false);
      await h.app.ready();
      await ledgerChecked(h.app);
      expect(ledgerProblemOf(h.app)).toBeNull();
      expect((await h.request('GET', '/readyz')).statusCode).toBe(200);
    } finally {
      await h.close();
    }
  });

  it('shows verifying with its progress while the check runs, then verified', async () => {
    let release = () => {};
    const held = new Promise<void>((done) => (release = done));
    // The check counts as running until whenLedgerVerified returns, as /readyz says: hold it there.
    const h = await startHarness({ app: { checkLedgerInBackground: true, whenLedgerVerified: () => held } });
    try {
      const entries = await h.ledgerCount();
      expect(entries).toBeGreaterThan(0);
      let during = '';
      await expect.poll(async () => sampleValue((during = (await h.request('GET', '/metrics')).body), 'ppn_ledger_check_checked_entries')).toBe(entries);
      expect(sampleValue(during, 'ppn_ledger_state', { state: 'verifying' })).toBe(1);
      expect(sampleValue(during, 'ppn_ledger_state', { state: 'verified' })).toBe(0);
      expect(sampleValue(during, 'ppn_ledger_check_total_entries')).toBe(entries);
      expect(sampleValue(during, 'ppn_ledger_check_progress')).toBe(1);
      expect((await h.request('GET', '/readyz')).json()).toMatchObject({ code: 'ledger_verifying' });

      release();
      await ledgerChecked(h.app);
      const after = (await h.request('GET', '/metrics')).body;
      expect(sampleValue(after, 'ppn_ledger_state', { state: 'verifying' })).toBe(0);
      expect(sampleValue(after, 'ppn_ledger_state', { state: 'verified' })).toBe(1);
      expect(sampleValue(after, 'ppn_ledger_state', { state: 'unverified' })).toBe(0);
      expect(sampleValue(after, 'ppn_ledger_check_checked_entries')).toBeUndefined();
      expect(sampleValue(after, 'ppn_ledger_entries_sequenced')).toBe(entries);
      expect(sampleValue(after, 'ppn_leader')).toBe(0);
    } finally {
      release();
      await h.close();
    }
  });
});
