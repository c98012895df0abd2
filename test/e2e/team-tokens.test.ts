/**
 * A tenant admin hands a device a narrower token (SPEC §5), end to end: a real server process, and
 * the built `ppn` CLI for everything the admin and the device do. The admin holds a root token that
 * demands proof of possession, bound to a key from `ppn keygen`, and delegates a `tenant:input`
 * block with max_vms=2 to the device's key offline; the device creates VMs with `ppn api`, signed
 * with its key, until its block's limit (not the tenant's) refuses; revoking the admin's token locks
 * the device out within 1 s. On SQLite and PostgreSQL; test/replicas/team-tokens.test.ts shows the
 * same across two replicas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockIds, delegate, keygen, ppnApi, type Holder } from '../support/ppn.js';
import { api, startServer, within, type ServerProcess } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

describe(`a tenant admin hands a device a token with a sub-quota (${TEST_STORE})`, () => {
  let server: ServerProcess;
  let admin: Holder;
  let device: Holder;
  let adminToken: string;
  let adminTokenId: string;
  let deviceToken: string;
  let deviceBlockId: string;
  const asDevice = (method: string, path: string, data?: unknown) => ppnApi(server.url, deviceToken, device, method, path, data);

  beforeAll(async () => {
    server = await startServer();
    const tenant = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: 'acme-corp', display_name: 'Acme Corporation', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
    });
    expect(tenant.status).toBe(201);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("the tenant admin's root token demands proof of possession by the key ppn keygen made", async () => {
    admin = keygen('acme-admin');
    const issued = await api(server.url, 'POST', '/v1/tenants/acme-corp/tokens', {
      token: server.adminToken,
      body: { subject_pubkey: admin.pub, scope: 'service:tenant-admin', expires_in_seconds: 86400, proof_of_possession: true },
    });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ subject_pubkey: admin.pub, proof_of_possession: true });
    adminToken = issued.body.token;
    adminTokenId = issued.body.token_id;
  });

  it('ppn token delegate adds a tenant:input block with max_vms=2 for the device key, offline', () => {
    device = keygen('build-box');
    // The command takes no server: it signs the new block with the admin's key file alone.
    deviceToken = delegate(adminToken, admin, ['--subject', device.pub, '--scope', 'tenant:input', '--expires-in', '3600', '--limit', 'max_vms=2']);
    const ids = blockIds(deviceToken);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBe(adminTokenId);
    deviceBlockId = ids[1]!;
  });

  it('the device, with ppn api and its key, creates two VMs; the third is refused with 429 naming token:max_vms and its block while the tenant has room', async () => {
    for (const name of ['build-1', 'build-2']) {
      const created = asDevice('POST', '/v1/vms', { name, disk_gb: 5 });
      expect(created.stderr).toBe('');
      expect(created.body).toMatchObject({ name, tenant_id: 'acme-corp', created_by: deviceBlockId });
    }
    const refused = asDevice('POST', '/v1/vms', { name: 'build-3', disk_gb: 5 });
    expect(refused.status).toBe(1);
    expect(refused.body).toMatchObject({
      status: 429,
      code: 'quota_exceeded',
      'violated-policies': ['token:max_vms'],
      quota: { resource: 'vms', limit: 2, used: 2, requested: 1 },
      block_id: deviceBlockId,
    });
    expect(refused.stderr).toMatch(/^error: POST \/v1\/vms: 429 .*token block tok-\S+'s max_vms quota/);

    const tenant = await api(server.url, 'GET', '/v1/tenants/acme-corp', { token: server.adminToken });
    expect(tenant.body).toMatchObject({ max_vms: 10, usage: { vms: 2 } });
    const whoami = asDevice('GET', '/v1/whoami');
    expect(whoami.body.chain.map((block: { token_id: string; limits: unknown; usage: { vms: number } }) => [block.token_id, block.limits, block.usage.vms])).toEqual([
      [adminTokenId, null, 2],
      [deviceBlockId, { max_vms: 2 }, 2],
    ]);
  });

  it("the device's token needs the device's signature: unsigned, or signed by the admin, it is refused", () => {
    expect(ppnApi(server.url, deviceToken, null, 'GET', '/v1/whoami').body).toMatchObject({ status: 401, signature_error: 'signature_missing' });
    expect(ppnApi(server.url, deviceToken, admin, 'GET', '/v1/whoami').body).toMatchObject({ status: 401, signature_error: 'wrong_key' });
  });

  it("delegating made no request: the tenant's only session is the device's, under the admin's root", async () => {
    const listed = async () => (await api(server.url, 'GET', '/v1/sessions?tenant_id=acme-corp', { token: server.adminToken })).body.items;
    // Sessions are written at most once a second.
    expect(await within(3000, async () => (await listed()).length > 0)).not.toBeNull();
    expect((await listed()).map((session: { token_id: string; chain: string[] }) => [session.token_id, session.chain])).toEqual([
      [deviceBlockId, [adminTokenId, deviceBlockId]],
    ]);
  });

  it("revoking the admin's token locks the device out within 1 s", async () => {
    expect((await api(server.url, 'GET', '/v1/whoami', { token: deviceToken, signWith: device.privateKey })).status).toBe(200);
    const revoked = await api(server.url, 'DELETE', `/v1/tenants/acme-corp/tokens/${adminTokenId}`, { token: server.adminToken });
    expect(revoked.status).toBe(200);
    const took = await within(1000, async () => (await api(server.url, 'GET', '/v1/whoami', { token: deviceToken, signWith: device.privateKey })).status === 401);
    expect(took, 'the device was still let in 1 s after its admin was revoked').not.toBeNull();
    const refused = asDevice('POST', '/v1/vms', { name: 'after-revoke' });
    expect(refused.status).toBe(1);
    expect(refused.body).toMatchObject({ status: 401, detail: 'token has been revoked' });
  });
});
