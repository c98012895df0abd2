/**
 * Platform-admin tokens are listed and revoked through /v1/admin/tokens. A caller may not revoke
 * its own token when it is the last live one, and each token records who minted it.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { makeIdSource } from '../../src/clock.js';
import { loadAdminKey } from '../../src/config/data-dir.js';
import { mintAdminToken } from '../../src/control/admin-token.js';
import { startHarness, type Harness } from '../support/harness.js';
import { expectProblem, snapshotState } from './expectations.js';

describe('platform-admin tokens', () => {
  let h: Harness | undefined;
  let adminTokenId: string;

  beforeEach(async () => {
    await h?.close();
    h = await startHarness();
    await h.createTenant('admin-co');
    adminTokenId = (await h.request('GET', '/v1/whoami', { token: h.adminToken })).json<{ token_id: string }>().token_id;
  });
  afterAll(async () => {
    await h?.close();
  });

  function mint(harness: Harness) {
    return mintAdminToken(
      { store: harness.store, clock: harness.clock, ids: makeIdSource(harness.clock) },
      harness.keyring,
      loadAdminKey(harness.dataDir).publicKey,
      3600,
    );
  }

  it('are listed with who minted each, and TOKEN_ISSUED names the local operator', async () => {
    const second = await mint(h!);
    const list = await h!.request('GET', '/v1/admin/tokens', { token: h!.adminToken });
    expect(list.statusCode).toBe(200);
    const items = list.json<{ items: { token_id: string; issued_by: string; tenant_id: null; revoked_at: null }[] }>().items;
    // Both were minted in the same millisecond of the harness clock, so their id order is random.
    expect(items.map((t) => t.token_id).sort()).toEqual([adminTokenId, second.row.token_id].sort());
    for (const item of items) expect(item).toMatchObject({ tenant_id: null, revoked_at: null, issued_by: expect.stringMatching(/^local-operator:.+@.+$/) });
    const [entry] = await h!.ledgerLines({ eventType: 'TOKEN_ISSUED', tokenId: second.row.token_id, limit: 10 });
    expect(entry).toMatchObject({ tenant_id: null, actor: { subject: 'local-operator' } });
  });

  it('a revoked platform token is refused at once; the revoker keeps working; TOKEN_REVOKED names it', async () => {
    const second = await mint(h!);
    const res = await h!.request('DELETE', `/v1/admin/tokens/${second.row.token_id}`, { token: h!.adminToken });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ token_id: second.row.token_id, revoked_at: expect.any(String) });
    expect(expectProblem(await h!.request('GET', '/v1/tenants', { token: second.token }), 401).detail).toBe('token has been revoked');
    expect((await h!.request('GET', '/v1/tenants', { token: h!.adminToken })).statusCode).toBe(200);
    const entries = await h!.ledgerLines({ eventType: 'TOKEN_REVOKED', tokenId: second.row.token_id, limit: 10 });
    expect(entries).toEqual([expect.objectContaining({ tenant_id: null, subject_ids: { token_id: second.row.token_id } })]);
  });

  it("refuses (409) to revoke the caller's own last live token, changing nothing", async () => {
    const before = await snapshotState(h!);
    const res = await h!.request('DELETE', `/v1/admin/tokens/${adminTokenId}`, { token: h!.adminToken });
    expect(expectProblem(res, 409).detail).toMatch(/last live platform-admin token: mint another with "service-vm-tenant admin-token"/);
    expect(await snapshotState(h!)).toEqual(before);
    expect((await h!.request('GET', '/v1/tenants', { token: h!.adminToken })).statusCode).toBe(200);
  });

  it('a caller may revoke its own token when another live one remains', async () => {
    const second = await mint(h!);
    expect((await h!.request('DELETE', `/v1/admin/tokens/${adminTokenId}`, { token: h!.adminToken })).statusCode).toBe(200);
    expect((await h!.request('GET', '/v1/tenants', { token: h!.adminToken })).statusCode).toBe(401);
    expect((await h!.request('GET', '/v1/tenants', { token: second.token })).statusCode).toBe(200);
  });

  it("a tenant token's id, or an unknown id, is 404; tenant tokens cannot use the routes", async () => {
    const tenant = await h!.issueToken('admin-co', 'service:tenant-admin');
    const before = await snapshotState(h!);
    expectProblem(await h!.request('DELETE', `/v1/admin/tokens/${tenant.tokenId}`, { token: h!.adminToken }), 404);
    expectProblem(await h!.request('DELETE', `/v1/admin/tokens/tok-${'0'.repeat(26)}`, { token: h!.adminToken }), 404);
    expectProblem(await h!.request('GET', '/v1/admin/tokens', { token: tenant.token }), 403);
    expectProblem(await h!.request('DELETE', `/v1/admin/tokens/${adminTokenId}`, { token: tenant.token }), 403);
    expect(await snapshotState(h!)).toEqual(before);
  });
});
