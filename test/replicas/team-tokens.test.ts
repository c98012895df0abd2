/**
 * A device's delegated token across two replicas on one PostgreSQL database (SPEC §5): the tenant
 * admin delegates with `ppn token delegate`, offline; the device's block limit counts VMs created
 * through either replica, so the third is refused wherever it lands, while the tenant has room; and
 * revoking the admin's token through replica A locks the device out of both replicas within 1 s.
 * test/e2e/team-tokens.test.ts walks the same story on one server, on either store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockIds, delegate, keygen, ppnApi } from '../support/ppn.js';
import { api, replicaDataDir, startServer, within, type ServerProcess } from '../support/server-process.js';

describe("a device's delegated token across replicas", () => {
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    a = await startServer();
    b = await startServer(replicaDataDir(a.dataDir));
    const tenant = await api(a.url, 'POST', '/v1/tenants', {
      token: a.adminToken,
      body: { tenant_id: 'acme-corp', display_name: 'Acme Corporation', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
    });
    expect(tenant.status).toBe(201);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  it("max_vms=2 holds over both replicas, and revoking the admin's token through A locks the device out of A and B within 1 s", async () => {
    const admin = keygen('acme-admin');
    const issued = await api(a.url, 'POST', '/v1/tenants/acme-corp/tokens', {
      token: a.adminToken,
      body: { subject_pubkey: admin.pub, scope: 'service:tenant-admin', expires_in_seconds: 86400, proof_of_possession: true },
    });
    expect(issued.status).toBe(201);
    const device = keygen('build-box');
    const deviceToken = delegate(issued.body.token, admin, ['--subject', device.pub, '--scope', 'tenant:input', '--expires-in', '3600', '--limit', 'max_vms=2']);
    const [adminTokenId, deviceBlockId] = blockIds(deviceToken);
    expect(adminTokenId).toBe(issued.body.token_id);

    expect(ppnApi(a.url, deviceToken, device, 'POST', '/v1/vms', { name: 'build-1' }).body).toMatchObject({ created_by: deviceBlockId });
    expect(ppnApi(b.url, deviceToken, device, 'POST', '/v1/vms', { name: 'build-2' }).body).toMatchObject({ created_by: deviceBlockId });
    for (const server of [a, b]) {
      const refused = ppnApi(server.url, deviceToken, device, 'POST', '/v1/vms', { name: 'build-3' });
      expect(refused.body).toMatchObject({ status: 429, 'violated-policies': ['token:max_vms'], block_id: deviceBlockId });
    }
    expect((await api(b.url, 'GET', '/v1/tenants/acme-corp', { token: a.adminToken })).body).toMatchObject({ max_vms: 10, usage: { vms: 2 } });

    const deviceStatus = async (server: ServerProcess) => (await api(server.url, 'GET', '/v1/whoami', { token: deviceToken, signWith: device.privateKey })).status;
    expect([await deviceStatus(a), await deviceStatus(b)]).toEqual([200, 200]);
    expect((await api(a.url, 'DELETE', `/v1/tenants/acme-corp/tokens/${adminTokenId}`, { token: a.adminToken })).status).toBe(200);
    const [onA, onB] = await Promise.all([a, b].map((server) => within(1000, async () => (await deviceStatus(server)) === 401)));
    expect(onA, 'replica A still let the device in 1 s after the revocation').not.toBeNull();
    expect(onB, 'replica B still let the device in 1 s after the revocation').not.toBeNull();
  });
});
