/**
 * Sessions across replicas (SPEC §5): each server counts a token's requests in memory and flushes
 * them once a second into the same rows, so the counts add up whichever replica served them; a
 * session ended through one replica is refused by the other within 1 s; and a restart keeps them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { api, replicaDataDir, startServer, within, type ServerProcess } from '../support/server-process.js';

const TENANT = 'sess-co';

interface Session {
  token_id: string;
  request_count: number;
  revoked: boolean;
}

describe('sessions across replicas', () => {
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    a = await startServer();
    b = await startServer(replicaDataDir(a.dataDir));
    const res = await api(a.url, 'POST', '/v1/tenants', {
      token: a.adminToken,
      body: { tenant_id: TENANT, display_name: 'Sessions', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 10_000 },
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  async function issue(scope: string): Promise<{ token: string; token_id: string }> {
    const res = await api(a.url, 'POST', `/v1/tenants/${TENANT}/tokens`, {
      token: a.adminToken,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(generateKeyPair().publicKey)), scope, expires_in_seconds: 3600 },
    });
    expect(res.status).toBe(201);
    return res.body;
  }

  /** The session of `tokenId` as `server` lists it (platform tokens are no tenant's session, so listing counts nothing). */
  async function sessionOn(server: ServerProcess, tokenId: string): Promise<Session | undefined> {
    const res = await api(server.url, 'GET', `/v1/sessions?tenant_id=${TENANT}&limit=1000`, { token: a.adminToken });
    expect(res.status).toBe(200);
    return (res.body.items as Session[]).find((s) => s.token_id === tokenId);
  }

  it('requests to both replicas add up in one session, within the flushers’ second', async () => {
    const { token, token_id } = await issue('tenant:read');
    for (let i = 0; i < 7; i++) expect((await api(a.url, 'GET', '/v1/vms', { token })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await api(b.url, 'GET', '/v1/vms', { token })).status).toBe(200);
    const took = await within(3000, async () => (await sessionOn(b, token_id))?.request_count === 12);
    expect(took, `the session shows ${(await sessionOn(b, token_id))?.request_count} requests, not 12`).not.toBeNull();
    expect(await sessionOn(a, token_id)).toMatchObject({ request_count: 12, revoked: false });
  });

  it('a session ended through replica A is refused by replica B within 1 s', async () => {
    const { token, token_id } = await issue('tenant:read');
    expect((await api(b.url, 'GET', '/v1/vms', { token })).status).toBe(200);
    expect(await within(3000, async () => (await sessionOn(a, token_id)) !== undefined)).not.toBeNull();
    const ended = await api(a.url, 'DELETE', `/v1/sessions/${token_id}?tenant_id=${TENANT}`, { token: a.adminToken });
    expect(ended.status).toBe(200);
    expect(ended.body).toMatchObject({ token_id, revoked: true });
    const took = await within(1000, async () => (await api(b.url, 'GET', '/v1/vms', { token })).status === 401);
    expect(took, 'replica B still accepted the token of an ended session after 1 s').not.toBeNull();
    expect(await within(1000, async () => (await sessionOn(b, token_id))?.revoked === true)).not.toBeNull();
  });

  it('sessions outlive a restart of every replica, counting what each held at its stop', async () => {
    const { token, token_id } = await issue('tenant:read');
    for (let i = 0; i < 3; i++) await api(a.url, 'GET', '/v1/vms', { token });
    for (let i = 0; i < 4; i++) await api(b.url, 'GET', '/v1/vms', { token });
    // Stopping flushes what each server holds, whether or not its second had come.
    await Promise.all([a.stop(), b.stop()]);
    a = await startServer(a.dataDir);
    b = await startServer(b.dataDir);
    expect((await sessionOn(a, token_id))?.request_count).toBe(7);
  });
});
