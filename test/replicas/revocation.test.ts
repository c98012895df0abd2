/**
 * Revocation and suspension reach every replica (SPEC §5: within 1 s). A token is revoked through
 * replica A; replica B must refuse it within a second. Suspending a tenant through A is seen by B on
 * its next request, since every request reads the tenant row.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import { delegatedBlockId, parseToken } from '../../src/tokens/format.js';
import { encodeBase64url, generateKeyPair, rawPublicKey, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken } from '../../src/tokens/mint.js';
import { api, replicaDataDir, startServer, within, type ServerProcess } from '../support/server-process.js';

describe('revocation and suspension across replicas', () => {
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    a = await startServer();
    b = await startServer(replicaDataDir(a.dataDir));
    const res = await api(a.url, 'POST', '/v1/tenants', {
      token: a.adminToken,
      body: { tenant_id: 'far-co', display_name: 'Far', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 10_000 },
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  async function issue(scope: string): Promise<{ token: string; token_id: string }> {
    const res = await api(a.url, 'POST', '/v1/tenants/far-co/tokens', {
      token: a.adminToken,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(generateKeyPair().publicKey)), scope, expires_in_seconds: 3600 },
    });
    expect(res.status).toBe(201);
    return res.body;
  }

  it('a token revoked through replica A is refused by replica B within 1 s', async () => {
    const { token, token_id } = await issue('tenant:read');
    expect((await api(b.url, 'GET', '/v1/vms', { token })).status).toBe(200);

    const revoked = await api(a.url, 'DELETE', `/v1/tenants/far-co/tokens/${token_id}`, { token: a.adminToken });
    expect(revoked.status).toBe(200);
    const took = await within(1000, async () => (await api(b.url, 'GET', '/v1/vms', { token })).status === 401);
    expect(took, 'replica B still accepted the revoked token after 1 s').not.toBeNull();
    const refused = await api(b.url, 'GET', '/v1/vms', { token });
    expect(refused.body).toMatchObject({ status: 401, detail: 'token has been revoked' });
  });

  it('reaches a replica that polls only once a minute within 1 s: PostgreSQL NOTIFY carries it', async () => {
    const slow = await startServer(replicaDataDir(a.dataDir), { PPN_REVOCATION_POLL_MS: '60000' });
    try {
      const { token, token_id } = await issue('tenant:read');
      expect((await api(slow.url, 'GET', '/v1/vms', { token })).status).toBe(200);
      expect((await api(a.url, 'DELETE', `/v1/tenants/far-co/tokens/${token_id}`, { token: a.adminToken })).status).toBe(200);
      const took = await within(1000, async () => (await api(slow.url, 'GET', '/v1/vms', { token })).status === 401);
      expect(took, 'the revocation did not arrive by notification').not.toBeNull();
    } finally {
      await slow.stop();
    }
  });

  it('a block delegated offline, revoked by id through replica A, is refused below it by replica B within 1 s', async () => {
    const [alice, bob, carol] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const pub = (keys: KeyPair) => encodeBase64url(rawPublicKey(keys.publicKey));
    const issued = await api(a.url, 'POST', '/v1/tenants/far-co/tokens', {
      token: a.adminToken,
      body: { subject_pubkey: pub(alice), scope: 'tenant:read', expires_in_seconds: 3600, proof_of_possession: true },
    });
    expect(issued.status).toBe(201);
    const now = Math.floor(Date.now() / 1000);
    const middle = delegateToken(issued.body.token, alice.privateKey, { sub: pub(bob), scp: ['tenant:read'], iat: now, exp: now + 600 });
    const bottom = delegateToken(middle, bob.privateKey, { sub: pub(carol), scp: ['tenant:read'], iat: now, exp: now + 600 });
    const middleId = delegatedBlockId(parseToken(bottom)[1]!.signature);
    const asCarol = async () => {
      const headers = signRequest({ method: 'GET', ...splitTarget('/v1/vms') }, { privateKey: carol.privateKey, clock: systemClock });
      return (await fetch(`${b.url}/v1/vms`, { headers: { authorization: `Bearer ${bottom}`, ...headers } })).status;
    };
    expect(await asCarol()).toBe(200);

    expect((await api(a.url, 'DELETE', `/v1/tenants/far-co/tokens/${middleId}`, { token: a.adminToken })).status).toBe(200);
    const took = await within(1000, async () => (await asCarol()) === 401);
    expect(took, 'replica B still accepted a token below the revoked block after 1 s').not.toBeNull();
  });

  it('a tenant suspended through replica A may only read on replica B, at once', async () => {
    const { token } = await issue('tenant:input');
    const patched = await api(a.url, 'PATCH', '/v1/tenants/far-co', { token: a.adminToken, body: { state: 'suspended' } });
    expect(patched.status).toBe(200);
    expect((await api(b.url, 'POST', '/v1/vms', { token, body: { name: 'after-suspend' } })).status).toBe(403);
    expect((await api(b.url, 'GET', '/v1/vms', { token })).status).toBe(200);
  });
});
