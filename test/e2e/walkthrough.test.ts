/**
 * The operator walk-through (SPEC §2), end to end: a real server process on a real port over a real
 * SQLite file, driven with plain HTTP, and the ledger read back with the real service-fs command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, CLI, runCli, startServer, type ServerProcess } from '../support/server-process.js';

describe('the five-step walk-through', () => {
  let server: ServerProcess;
  let tenantAdminToken: string;
  let tenantAdminPub: string;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('first start writes a platform-admin token and says so', () => {
    expect(server.output()).toMatch(/wrote a platform-admin token .* to .*admin\.token/);
    expect(server.adminToken).toMatch(/^pct1\./);
  });

  it('step 1: creates the tenant and records TENANT_CREATED', async () => {
    const res = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: 'acme-corp', display_name: 'Acme Corporation', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ tenant_id: 'acme-corp', display_name: 'Acme Corporation', max_vms: 10, state: 'active' });
    expect(Date.parse(res.body.created_at)).not.toBeNaN();
  });

  it('step 2: issues a tenant-admin token bound to a key made by ppn keygen', async () => {
    const keyFile = `${server.dataDir}/../tenant-admin.key`;
    const keygen = runCli(CLI.ppn, ['keygen', '--out', keyFile]);
    expect(keygen.status).toBe(0);
    tenantAdminPub = keygen.stdout.trim();
    const res = await api(server.url, 'POST', '/v1/tenants/acme-corp/tokens', {
      token: server.adminToken,
      body: { subject_pubkey: tenantAdminPub, scope: 'service:tenant-admin', expires_in_seconds: 86400 },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ tenant_id: 'acme-corp', scope: ['service:tenant-admin'], subject_pubkey: tenantAdminPub });
    tenantAdminToken = res.body.token;
  });

  it("step 3: lists only acme-corp's VMs while another tenant has VMs too", async () => {
    await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: 'globex', display_name: 'Globex', max_vms: 5, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
    });
    for (let i = 0; i < 3; i++) {
      const res = await api(server.url, 'POST', '/v1/vms?tenant_id=globex', { token: server.adminToken, body: { name: `globex-${i}` } });
      expect(res.status).toBe(201);
    }
    const created = await api(server.url, 'POST', '/v1/vms', { token: tenantAdminToken, body: { name: 'web-1' } });
    expect(created.status).toBe(201);

    const res = await api(server.url, 'GET', '/v1/vms', { token: tenantAdminToken });
    expect(res.status).toBe(200);
    expect(res.body.items.map((vm: { name: string }) => vm.name)).toEqual(['web-1']);
    expect(res.body.items.every((vm: { tenant_id: string }) => vm.tenant_id === 'acme-corp')).toBe(true);
  });

  it('step 4: the 11th VM gets 429 with a quota-exceeded body', async () => {
    for (let i = 2; i <= 10; i++) {
      const res = await api(server.url, 'POST', '/v1/vms', { token: tenantAdminToken, body: { name: `web-${i}`, disk_gb: 5 } });
      expect(res.status).toBe(201);
    }
    const res = await api(server.url, 'POST', '/v1/vms', { token: tenantAdminToken, body: { name: 'web-11', disk_gb: 5 } });
    expect(res.status).toBe(429);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
      status: 429,
      'violated-policies': ['max_vms'],
      quota: { resource: 'vms', limit: 10, used: 10, requested: 1 },
    });
    expect(Number.isInteger(res.body.ledger_index)).toBe(true);

    const denied = runCli(CLI.fs, ['read', '--data-dir', server.dataDir, '--event-type', 'VM_CREATE_DENIED', '--json']);
    const entries = denied.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(entries.map((e) => e.index)).toEqual([res.body.ledger_index]);
  });

  it('step 5: service-fs shows when the namespace was created and under which admin token', async () => {
    const whoami = await api(server.url, 'GET', '/v1/whoami', { token: server.adminToken });
    const out = runCli(CLI.fs, ['read', '--filter', 'tenant-id=acme-corp', '--event-type', 'TENANT_CREATED', '--limit', '1', '--json'], {
      PPN_DATA_DIR: server.dataDir,
    });
    expect(out.status).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      event_type: 'TENANT_CREATED',
      tenant_id: 'acme-corp',
      actor: { token_id: whoami.body.token_id, scope: ['service:platform-admin'] },
      data: { display_name: 'Acme Corporation', max_vms: 10 },
    });
    expect(Date.parse(entry.ts)).not.toBeNaN();

    const human = runCli(CLI.fs, ['read', '--data-dir', server.dataDir, '--filter', 'tenant-id=acme-corp', '--event-type', 'TENANT_CREATED', '--limit', '1']);
    expect(human.stdout).toContain(`TENANT_CREATED tenant=acme-corp actor=${whoami.body.token_id}`);
  });
});
