/**
 * /metrics of a real `service-vm-tenant serve` process over real HTTP (both stores), as Prometheus
 * scrapes it: guarded by `--metrics-token` (or PPN_METRICS_TOKEN), with the per-tenant usage and
 * limit gauges, the ledger's size, checkpoint age and start-up check state and the leader flag; a
 * tampered ledger shows as unverified; and every metric docs/prometheus-alerts.yml names is there.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { count, dbShell, dropWorm } from '../support/db-shell.js';
import { declaredMetrics, sampleValue } from '../support/metrics-text.js';
import { api, CLI, serversStoppedAfterEach, startServer, tempDataDir, within, type ServerProcess } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

const TOKEN = randomBytes(32).toString('hex');

function tokenFile(token: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'ppn-metrics-')), 'metrics.token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return file;
}

async function scrape(url: string, token?: string): Promise<{ status: number; contentType: string | null; text: string }> {
  const res = await fetch(`${url}/metrics`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}

async function scrapeText(url: string, token?: string): Promise<string> {
  const { status, text } = await scrape(url, token);
  expect(status, text).toBe(200);
  return text;
}

const usage = (text: string, tenant: string, resource: string) => sampleValue(text, 'ppn_tenant_usage', { tenant, resource });
const limit = (text: string, tenant: string, resource: string) => sampleValue(text, 'ppn_tenant_limit', { tenant, resource });

describe(`/metrics of a real server (${TEST_STORE})`, () => {
  let server: ServerProcess;
  /** Requests made with acme's token, all within this file's first minute. */
  let acmeRequests = 0;

  beforeAll(async () => {
    server = await startServer(tempDataDir(), {}, { args: ['--metrics-token', tokenFile(TOKEN)] });
    const admin = { token: server.adminToken };
    const created = await api(server.url, 'POST', '/v1/tenants', {
      ...admin,
      body: { tenant_id: 'acme', display_name: 'Acme', max_vms: 10, storage_quota_gb: 100, max_vcpus: 16, api_rate_limit_rpm: 1000 },
    });
    expect(created.status).toBe(201);
    const issued = await api(server.url, 'POST', '/v1/tenants/acme/tokens', {
      ...admin,
      body: { subject_pubkey: generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, scope: 'tenant:input', expires_in_seconds: 3600 },
    });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    for (let i = 0; i < 3; i++) {
      const vm = await api(server.url, 'POST', '/v1/vms', { token: issued.body.token, body: { name: `web-${i}`, vcpus: 2, memory_mb: 512, disk_gb: 5 } });
      expect(vm.status).toBe(201);
      acmeRequests++;
    }
  });
  afterAll(async () => {
    await server?.stop();
  });

  it.each([
    ['no token', () => undefined],
    ['a wrong token', () => randomBytes(32).toString('hex')],
    ["a platform admin's capability token", () => server.adminToken],
  ])('with --metrics-token, refuses a scrape with %s: 401 problem+json', async (_what, token) => {
    const answer = await scrape(server.url, token());
    expect(answer.status).toBe(401);
    expect(answer.contentType).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answer.text)).toMatchObject({ status: 401, code: 'unauthenticated' });
    expect(answer.text).not.toContain(TOKEN);
  });

  it('with the metrics token, shows the tenant series, and the token is never in the log', async () => {
    const text = await scrapeText(server.url, TOKEN);
    expect(text).toContain('# TYPE ppn_tenant_usage gauge');
    expect(text).toContain('# TYPE ppn_quota_refusals_total counter');
    expect(usage(text, 'acme', 'vms')).toBe(3);
    expect(server.output()).not.toContain(TOKEN);
  });

  it("the usage gauges are exactly what the tenant's VMs hold and its requests in the rate window; the limit gauges its limits, none where it has none", async () => {
    const text = await scrapeText(server.url, TOKEN);
    expect(usage(text, 'acme', 'vms')).toBe(3);
    expect(usage(text, 'acme', 'storage_gb')).toBe(15);
    expect(usage(text, 'acme', 'vcpus')).toBe(6);
    expect(usage(text, 'acme', 'memory_mb')).toBe(1536);
    // PostgreSQL's shared window counts the slots leased to the replica (a few at a time) as taken.
    if (TEST_STORE === 'sqlite') expect(usage(text, 'acme', 'api_rate_rpm')).toBe(acmeRequests);
    else expect(usage(text, 'acme', 'api_rate_rpm')).toBeGreaterThanOrEqual(acmeRequests);
    expect(limit(text, 'acme', 'vms')).toBe(10);
    expect(limit(text, 'acme', 'storage_gb')).toBe(100);
    expect(limit(text, 'acme', 'vcpus')).toBe(16);
    expect(limit(text, 'acme', 'memory_mb')).toBeUndefined();
    expect(limit(text, 'acme', 'api_rate_rpm')).toBe(1000);
  });

  it('the ledger gauges: entries sequenced are the ledger size, the newest checkpoint covers them and is seconds old; the check passed; this replica leads', async () => {
    let text = '';
    const covered = await within(10_000, async () => {
      text = await scrapeText(server.url, TOKEN);
      const size = sampleValue(text, 'ppn_ledger_checkpoint_size');
      return size !== undefined && size > 0 && size === sampleValue(text, 'ppn_ledger_entries_sequenced');
    });
    expect(covered, text).not.toBeNull();
    const entries = count(server.dataDir, 'ledger_entries');
    expect(sampleValue(text, 'ppn_ledger_entries_sequenced')).toBe(entries);
    expect(sampleValue(text, 'ppn_ledger_entries_integrated')).toBe(entries);
    const age = sampleValue(text, 'ppn_ledger_checkpoint_age_seconds')!;
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(60);
    expect(sampleValue(text, 'ppn_ledger_state', { state: 'verified' })).toBe(1);
    expect(sampleValue(text, 'ppn_ledger_state', { state: 'verifying' })).toBe(0);
    expect(sampleValue(text, 'ppn_ledger_state', { state: 'unverified' })).toBe(0);
    expect(sampleValue(text, 'ppn_ledger_check_progress')).toBe(1);
    expect(sampleValue(text, 'ppn_leader')).toBe(1);
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(declaredMetrics(text)).toContain(name);
    }
  });

  it('every metric the example alert rules (docs/prometheus-alerts.yml) name is on /metrics', async () => {
    const rules = parse(readFileSync('docs/prometheus-alerts.yml', 'utf8')) as { groups: { name: string; rules: { alert: string; expr: string }[] }[] };
    const alerts = rules.groups.flatMap((group) => group.rules);
    expect(alerts.map((rule) => rule.alert).sort()).toEqual(['PpnCheckpointStale', 'PpnLeaderMissing', 'PpnLedgerUnverified', 'PpnTenantNearQuota', 'PpnUsageDrift']);
    // The usage audit runs when the leader starts: its gauge is there once it has.
    await within(5000, async () => declaredMetrics(await scrapeText(server.url, TOKEN)).has('ppn_usage_drift_rows'));
    const exported = declaredMetrics(await scrapeText(server.url, TOKEN));
    for (const rule of alerts) {
      const named = metricNames(rule.expr);
      expect(named.length, rule.expr).toBeGreaterThan(0);
      for (const name of named) expect(exported, `${rule.alert} uses ${name}`).toContain(name);
    }
  });
});

/** PromQL words that are not metric names. */
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'bool', 'group_left', 'group_right', 'offset']);

/** The metric names a PromQL expression reads: identifiers outside label matchers and strings that call nothing. */
function metricNames(expr: string): string[] {
  const bare = expr.replace(/\{[^}]*\}/g, ' ').replace(/"[^"]*"/g, ' ');
  return [...bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)].filter((m) => m[2] === undefined && !PROMQL_WORDS.has(m[1]!)).map((m) => m[1]!);
}

describe(`/metrics guarded or not (${TEST_STORE})`, () => {
  const start = serversStoppedAfterEach();

  it('PPN_METRICS_TOKEN guards /metrics as --metrics-token does', async () => {
    const server = await startServer(tempDataDir(), { PPN_METRICS_TOKEN: TOKEN });
    try {
      expect((await scrape(server.url)).status).toBe(401);
      expect((await scrape(server.url, server.adminToken)).status).toBe(401);
      expect(await scrapeText(server.url, TOKEN)).toContain('# TYPE ppn_tenant_usage gauge');
    } finally {
      await server.stop();
    }
  });

  it.each([
    ['a missing file', () => ['--metrics-token', join(tmpdir(), 'no-such-dir', 'metrics.token')], {}, /--metrics-token: cannot read /],
    ['a token too short in the file', () => ['--metrics-token', tokenFile('short')], {}, /must be at least 16 visible ASCII characters/],
    ['an empty PPN_METRICS_TOKEN', () => [], { PPN_METRICS_TOKEN: '' }, /PPN_METRICS_TOKEN\) must be at least 16/],
  ])('serve refuses to start with %s, naming the problem and not the token', (_what, args, env, message) => {
    // A server that started after all would run on: it is killed after 20 s and the test fails.
    const out = spawnSync(process.execPath, [CLI.server, 'serve', '--data-dir', tempDataDir(), '--listen', '127.0.0.1:0', ...args()], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(message);
    expect(out.stderr).not.toContain('short');
  });

  it('without a metrics token, an anonymous scrape sees no tenant series', async () => {
    const server = await start(tempDataDir());
    expect((await api(server.url, 'POST', '/v1/tenants', { token: server.adminToken, body: { tenant_id: 'acme', display_name: 'Acme' } })).status).toBe(201);
    const anonymous = await scrapeText(server.url);
    expect(anonymous).not.toMatch(/tenant=/);
    expect(anonymous).not.toContain('ppn_tenant_usage');
    expect(anonymous).toContain('# TYPE ppn_ledger_state gauge');
    expect(usage(await scrapeText(server.url, server.adminToken), 'acme', 'vms')).toBe(0);
  });

  it('a tampered ledger shows as ppn_ledger_state{state="unverified"} 1', async () => {
    const first = await start(tempDataDir());
    expect((await api(first.url, 'POST', '/v1/tenants', { token: first.adminToken, body: { tenant_id: 'acme', display_name: 'Acme' } })).status).toBe(201);
    expect(await first.stop()).toBe(0);
    dbShell(first.dataDir, `${dropWorm(first.dataDir, 'ledger_entries')} update ledger_entries set entry = replace(entry, '"ts":"', '"ts":"1') where idx = 0;`);
    const server = await start(first.dataDir);
    let text = '';
    const found = await within(5000, async () => sampleValue((text = await scrapeText(server.url)), 'ppn_ledger_state', { state: 'unverified' }) === 1);
    expect(found, text).not.toBeNull();
    expect(sampleValue(text, 'ppn_ledger_state', { state: 'verified' })).toBe(0);
  });
});
