/**
 * Revoking a block delegated offline (SPEC §5): the server has no row for it, so it is revoked by
 * the id `ppn token inspect` shows, and every token below it is refused on the next request. The
 * revocation binds only the tenant that made it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RevocationList } from '../../src/control/revocations.js';
import { delegatedBlockId, parseToken } from '../../src/tokens/format.js';
import { generateKeyPair, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken } from '../../src/tokens/mint.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { snapshotState } from './expectations.js';

const A = 'block-a';
const B = 'block-b';

describe('revoking a block delegated offline', () => {
  let h: Harness;
  let bAdmin: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A);
    await h.createTenant(B);
    bAdmin = (await h.issueToken(B, 'service:tenant-admin')).token;
  });
  afterAll(async () => {
    await h.close();
  });

  /** A pop root for alice, delegated offline to bob and from bob to carol: two blocks below the root. */
  async function twoLevelsDeep(): Promise<{
    root: string;
    middle: string;
    bottom: string;
    carol: KeyPair;
    bob: KeyPair;
    alice: KeyPair;
    middleId: string;
    bottomId: string;
  }> {
    const [alice, bob, carol] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const res = await h.request('POST', `/v1/tenants/${A}/tokens`, {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(alice), scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true },
    });
    expect(res.statusCode).toBe(201);
    const root = res.json<{ token: string }>().token;
    const now = Math.floor(h.clock.now() / 1000);
    const middle = delegateToken(root, alice.privateKey, { sub: publicKeyText(bob), scp: ['tenant:user'], iat: now, exp: now + 600 });
    const bottom = delegateToken(middle, bob.privateKey, { sub: publicKeyText(carol), scp: ['tenant:read'], iat: now, exp: now + 600 });
    const blocks = parseToken(bottom);
    return { root, middle, bottom, alice, bob, carol, middleId: delegatedBlockId(blocks[1]!.signature), bottomId: delegatedBlockId(blocks[2]!.signature) };
  }

  it('revoking the middle block by id refuses the token below it at once, and leaves the root working', async () => {
    const t = await twoLevelsDeep();
    const whoami = await h.request('GET', '/v1/whoami', { token: t.bottom, signWith: t.carol.privateKey });
    expect(whoami.statusCode).toBe(200);
    expect(
      whoami
        .json<{ chain: { token_id: string }[] }>()
        .chain.map((b) => b.token_id)
        .slice(1),
    ).toEqual([t.middleId, t.bottomId]);

    const revoked = await h.request('DELETE', `/v1/tenants/${A}/tokens/${t.middleId}`, { token: h.adminToken });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toEqual({ token_id: t.middleId, tenant_id: A, issued: false, revoked_at: expect.any(String) });

    for (const [token, key] of [
      [t.bottom, t.carol],
      [t.middle, t.bob],
    ] as const) {
      const refused = await h.request('GET', '/v1/whoami', { token, signWith: key.privateKey });
      expect(refused.statusCode).toBe(401);
      expect(refused.json()).toMatchObject({ detail: 'token has been revoked' });
    }
    expect((await h.request('GET', '/v1/whoami', { token: t.root, signWith: t.alice.privateKey })).statusCode).toBe(200);
  });

  it('the ledger has one TOKEN_REVOKED naming the block, however often it is revoked', async () => {
    const t = await twoLevelsDeep();
    const first = await h.request('DELETE', `/v1/tenants/${A}/tokens/${t.middleId}`, { token: h.adminToken });
    const again = await h.request('DELETE', `/v1/tenants/${A}/tokens/${t.middleId}`, { token: h.adminToken });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());
    const entries = await h.ledgerLines({ eventType: 'TOKEN_REVOKED', tokenId: t.middleId, limit: 100 });
    expect(entries).toEqual([expect.objectContaining({ tenant_id: A, subject_ids: { token_id: t.middleId }, data: { issued: false } })]);
  });

  it('a block revoked before it is first used is refused when it is', async () => {
    const t = await twoLevelsDeep();
    expect((await h.request('DELETE', `/v1/tenants/${A}/tokens/${t.bottomId}`, { token: h.adminToken })).statusCode).toBe(200);
    expect((await h.request('GET', '/v1/whoami', { token: t.bottom, signWith: t.carol.privateKey })).statusCode).toBe(401);
    expect((await h.request('GET', '/v1/whoami', { token: t.middle, signWith: t.bob.privateKey })).statusCode).toBe(200);
  });

  it("tenant B cannot revoke A's block: by A's path it is 404 and nothing changes", async () => {
    const t = await twoLevelsDeep();
    const before = await snapshotState(h);
    const res = await h.request('DELETE', `/v1/tenants/${A}/tokens/${t.middleId}`, { token: bAdmin });
    expect(res.statusCode).toBe(404);
    expect(await snapshotState(h)).toEqual(before);
    expect((await h.request('GET', '/v1/whoami', { token: t.bottom, signWith: t.carol.privateKey })).statusCode).toBe(200);
  });

  it("by its own path, B revokes the id in B only: A's token keeps working", async () => {
    const t = await twoLevelsDeep();
    const res = await h.request('DELETE', `/v1/tenants/${B}/tokens/${t.middleId}`, { token: bAdmin });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ tenant_id: B, issued: false });
    expect((await h.request('GET', '/v1/whoami', { token: t.bottom, signWith: t.carol.privateKey })).statusCode).toBe(200);
    // A list loaded from the ledger, as another replica's is, draws the same line.
    const loaded = new RevocationList();
    await loaded.refresh(h.store.db);
    expect(loaded.anyRevoked(B, [t.middleId])).toBe(true);
    expect(loaded.anyRevoked(A, [t.middleId])).toBe(false);
  });
});
