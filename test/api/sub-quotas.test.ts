/**
 * Sub-quotas over HTTP (SPEC §5, §6): tokens issued with `limits` cap what is created under them,
 * counted per token block in the same transaction as the tenant quota; refusals are 429 naming
 * `token:<policy>` and the block, with their VM_CREATE_DENIED entry; deletes free the usage again;
 * /v1/whoami shows each block's limits and usage; and no token issues another wider than itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUOTA_EXCEEDED_TYPE } from '../../src/api/problem.js';
import { readBlockUsage } from '../../src/store/token-blocks.js';
import { generateKeyPair } from '../../src/tokens/keys.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';

const ZERO = { vms: 0, storage_gb: 0, vcpus: 0, memory_mb: 0 };

describe('sub-quotas on tokens issued with limits', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant('capped', { max_vms: 50, storage_quota_gb: 1000 });
  });
  afterAll(async () => {
    await h.close();
  });

  async function issue(issuer: string, scope: string, limits?: Record<string, unknown>) {
    return h.request('POST', '/v1/tenants/capped/tokens', {
      token: issuer,
      body: { subject_pubkey: publicKeyText(generateKeyPair()), scope, expires_in_seconds: 3600, ...(limits ? { limits } : {}) },
    });
  }

  async function issueLimited(issuer: string, scope: string, limits: Record<string, number>): Promise<{ token: string; tokenId: string }> {
    const res = await issue(issuer, scope, limits);
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body.limits).toEqual(limits);
    return { token: body.token, tokenId: body.token_id };
  }

  const createVm = (token: string, name: string, disk_gb = 5) => h.request('POST', '/v1/vms', { token, body: { name, disk_gb, vcpus: 1, memory_mb: 512 } });
  const whoami = async (token: string) => (await h.request('GET', '/v1/whoami', { token })).json();

  it('a token with max_vms=2 creates two VMs while the tenant has room, and the third is 429 naming token:max_vms and the block', async () => {
    const device = await issueLimited(h.adminToken, 'tenant:input', { max_vms: 2 });
    expect((await createVm(device.token, 'dev-1')).statusCode).toBe(201);
    expect((await createVm(device.token, 'dev-2')).statusCode).toBe(201);
    const refused = await createVm(device.token, 'dev-3');
    expect(refused.statusCode).toBe(429);
    const problem = refused.json();
    expect(problem).toMatchObject({
      type: QUOTA_EXCEEDED_TYPE,
      status: 429,
      'violated-policies': ['token:max_vms'],
      quota: { resource: 'vms', limit: 2, used: 2, requested: 1 },
      block_id: device.tokenId,
    });
    const [entry] = await h.ledgerLines({ eventType: 'VM_CREATE_DENIED', tenantId: 'capped', limit: 100 });
    expect(entry).toMatchObject({
      index: problem.ledger_index,
      data: { name: 'dev-3', violated_policies: ['token:max_vms'], quota: problem.quota, block_id: device.tokenId },
    });
    // The tenant itself still has room: another token creates freely.
    const other = await h.issueToken('capped', 'tenant:input');
    expect((await createVm(other.token, 'other-1')).statusCode).toBe(201);
  });

  it('every limit is enforced per block: storage, vCPUs and memory', async () => {
    const device = await issueLimited(h.adminToken, 'tenant:input', { storage_quota_gb: 12, max_vcpus: 3, max_memory_mb: 4096 });
    expect((await createVm(device.token, 'st-1', 10)).statusCode).toBe(201);
    const disk = await createVm(device.token, 'st-2', 5);
    expect(disk.json()).toMatchObject({ 'violated-policies': ['token:storage_quota_gb'], quota: { resource: 'storage_gb', limit: 12, used: 10, requested: 5 } });
    const cpus = await h.request('POST', '/v1/vms', { token: device.token, body: { name: 'st-3', disk_gb: 1, vcpus: 3, memory_mb: 512 } });
    expect(cpus.json()).toMatchObject({ 'violated-policies': ['token:max_vcpus'], block_id: device.tokenId });
    const memory = await h.request('POST', '/v1/vms', { token: device.token, body: { name: 'st-4', disk_gb: 1, vcpus: 1, memory_mb: 4000 } });
    expect(memory.json()).toMatchObject({ 'violated-policies': ['token:max_memory_mb'], quota: { resource: 'memory_mb', limit: 4096, used: 512 } });
  });

  it('deleting a VM frees its usage in its block, and whoami shows each block’s limits and usage', async () => {
    const device = await issueLimited(h.adminToken, 'tenant:input', { max_vms: 1, storage_quota_gb: 50 });
    const unused = await whoami(device.token);
    expect(unused.chain).toEqual([expect.objectContaining({ token_id: device.tokenId, limits: { max_vms: 1, storage_quota_gb: 50 }, usage: ZERO })]);
    expect(unused.issued_under).toEqual([]);

    const vm = (await createVm(device.token, 'del-1', 7)).json();
    expect((await whoami(device.token)).chain[0].usage).toEqual({ vms: 1, storage_gb: 7, vcpus: 1, memory_mb: 512 });
    expect((await createVm(device.token, 'del-2')).statusCode).toBe(429);

    expect((await h.request('DELETE', `/v1/vms/${vm.vm_id}`, { token: device.token })).statusCode).toBe(204);
    expect((await whoami(device.token)).chain[0].usage).toEqual(ZERO);
    expect((await createVm(device.token, 'del-2')).statusCode).toBe(201);
  });

  it('a VM deleted by another token still frees the usage of the block it was created under', async () => {
    const device = await issueLimited(h.adminToken, 'tenant:input', { max_vms: 1 });
    const vm = (await createVm(device.token, 'freed-1')).json();
    expect((await h.request('DELETE', `/v1/vms/${vm.vm_id}?tenant_id=capped`, { token: h.adminToken })).statusCode).toBe(204);
    expect((await whoami(device.token)).chain[0].usage.vms).toBe(0);
  });

  it('empty limits are no limits', async () => {
    const res = await issue(h.adminToken, 'tenant:input', {});
    expect(res.statusCode).toBe(201);
    expect(res.json().limits).toBeNull();
    expect((await whoami(res.json().token)).chain[0].limits).toBeNull();
  });

  it('tokens without limits show null limits and still count their usage', async () => {
    const plain = await h.issueToken('capped', 'tenant:input');
    await createVm(plain.token, 'plain-1', 3);
    expect((await whoami(plain.token)).chain).toEqual([expect.objectContaining({ limits: null, usage: { vms: 1, storage_gb: 3, vcpus: 1, memory_mb: 512 } })]);
    expect((await whoami(h.adminToken)).chain).toEqual([expect.objectContaining({ limits: null, usage: null })]);
  });

  it("the tenant's quota is checked first: when both would be exceeded, the refusal names the tenant's policy and no block", async () => {
    await h.createTenant('tight', { max_vms: 1 });
    const res = await h.request('POST', '/v1/tenants/tight/tokens', {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:input', expires_in_seconds: 3600, limits: { max_vms: 1 } },
    });
    const { token } = res.json();
    expect((await createVm(token, 'only')).statusCode).toBe(201);
    const refused = (await createVm(token, 'second')).json();
    expect(refused['violated-policies']).toEqual(['max_vms']);
    expect(refused).not.toHaveProperty('block_id');
  });

  it("a tenant's cascade delete frees the usage its VMs held in their blocks", async () => {
    await h.createTenant('cascading');
    const res = await h.request('POST', '/v1/tenants/cascading/tokens', {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:input', expires_in_seconds: 3600, limits: { max_vms: 5 } },
    });
    const { token, token_id } = res.json();
    await createVm(token, 'c-1');
    await createVm(token, 'c-2');
    expect((await readBlockUsage(h.store.db, 'cascading', [token_id])).get(token_id)!.vms).toBe(2);
    expect((await h.request('DELETE', '/v1/tenants/cascading?cascade=true', { token: h.adminToken })).statusCode).toBe(204);
    expect((await readBlockUsage(h.store.db, 'cascading', [token_id])).get(token_id)).toEqual(ZERO);
  });

  describe('a limited tenant admin', () => {
    let admin: { token: string; tokenId: string };

    beforeAll(async () => {
      admin = await issueLimited(h.adminToken, 'service:tenant-admin', { max_vms: 3, storage_quota_gb: 30 });
    });

    it.each([
      ['a wider max_vms', { max_vms: 4, storage_quota_gb: 30 }, 'limits.max_vms'],
      ['a wider storage_quota_gb', { max_vms: 3, storage_quota_gb: 31 }, 'limits.storage_quota_gb'],
      ['a limit left out (unlimited)', { max_vms: 2 }, 'limits.storage_quota_gb'],
      ['no limits at all', undefined, 'limits.max_vms'],
    ])('cannot issue a token with %s: 400 naming the field, nothing issued', async (_, limits, field) => {
      const before = await h.ledgerCount();
      const res = await issue(admin.token, 'tenant:input', limits);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'invalid_input', field });
      expect(await h.ledgerCount()).toBe(before);
    });

    it('issues narrower tokens, whose creates count against its own block too', async () => {
      const first = await issueLimited(admin.token, 'tenant:input', { max_vms: 2, storage_quota_gb: 30, max_vcpus: 8 });
      const second = await issueLimited(admin.token, 'tenant:input', { max_vms: 2, storage_quota_gb: 30 });
      expect((await createVm(first.token, 'lin-1')).statusCode).toBe(201);
      expect((await createVm(first.token, 'lin-2')).statusCode).toBe(201);
      expect((await createVm(second.token, 'lin-3')).statusCode).toBe(201);
      // Each issued token has room left of its own, but the issuer's block is full.
      const refused = await createVm(second.token, 'lin-4');
      expect(refused.statusCode).toBe(429);
      expect(refused.json()).toMatchObject({ 'violated-policies': ['token:max_vms'], block_id: admin.tokenId, quota: { limit: 3, used: 3 } });

      const seen = await whoami(second.token);
      expect(seen.chain[0]).toMatchObject({ token_id: second.tokenId, usage: { vms: 1 } });
      expect(seen.issued_under).toEqual([
        { token_id: admin.tokenId, limits: { max_vms: 3, storage_quota_gb: 30 }, usage: { vms: 3, storage_gb: 15, vcpus: 3, memory_mb: 1536 } },
      ]);
      expect((await whoami(admin.token)).chain[0].usage.vms).toBe(3);
    });
  });
});
