/**
 * Token names (SPEC §5): an optional name and description given when issuing, so a token list is
 * readable by people. They are kept with the token and shown in lists, whoami and the ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../../src/tokens/keys.js';
import { delegateToken } from '../../src/tokens/mint.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';

const A = 'names-co';

describe('token names', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A);
  });
  afterAll(async () => {
    await h.close();
  });

  async function issue(extra: Record<string, unknown>, holder = generateKeyPair()) {
    const res = await h.request('POST', `/v1/tenants/${A}/tokens`, {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(holder), scope: 'tenant:read', expires_in_seconds: 3600, ...extra },
    });
    expect(res.statusCode).toBe(201);
    return res.json<{ token: string; token_id: string; name: string | null; description: string | null }>();
  }

  it('a name and description given when issuing are shown in the answer, the token list, whoami and TOKEN_ISSUED', async () => {
    const issued = await issue({ name: 'ci deploy — prod', description: 'Used by the nightly deploy job; ask #infra before revoking.' });
    expect(issued).toMatchObject({ name: 'ci deploy — prod', description: 'Used by the nightly deploy job; ask #infra before revoking.' });

    const list = await h.request('GET', `/v1/tenants/${A}/tokens`, { token: h.adminToken });
    expect(list.json<{ items: unknown[] }>().items).toContainEqual(
      expect.objectContaining({ token_id: issued.token_id, name: 'ci deploy — prod', description: 'Used by the nightly deploy job; ask #infra before revoking.' }),
    );

    const whoami = await h.request('GET', '/v1/whoami', { token: issued.token });
    expect(whoami.json()).toMatchObject({ token_id: issued.token_id, name: 'ci deploy — prod', chain: [{ token_id: issued.token_id, name: 'ci deploy — prod' }] });

    const [entry] = await h.ledgerLines({ eventType: 'TOKEN_ISSUED', tokenId: issued.token_id, limit: 10 });
    expect(entry).toMatchObject({ data: { name: 'ci deploy — prod', description: 'Used by the nightly deploy job; ask #infra before revoking.' } });
  });

  it('both are optional: an unnamed token shows null and its ledger entry carries neither', async () => {
    const issued = await issue({});
    expect(issued).toMatchObject({ name: null, description: null });
    const whoami = await h.request('GET', '/v1/whoami', { token: issued.token });
    expect(whoami.json()).toMatchObject({ name: null, chain: [{ name: null }] });
    const [entry] = await h.ledgerLines({ eventType: 'TOKEN_ISSUED', tokenId: issued.token_id, limit: 10 });
    expect(entry!.data).not.toHaveProperty('name');
    expect(entry!.data).not.toHaveProperty('description');
  });

  it('a block delegated offline has no name in whoami; its root keeps its own', async () => {
    const alice = generateKeyPair();
    const bob = generateKeyPair();
    const root = await issue({ name: 'alice laptop', proof_of_possession: true }, alice);
    const now = Math.floor(h.clock.now() / 1000);
    const delegated = delegateToken(root.token, alice.privateKey, { sub: publicKeyText(bob), scp: ['tenant:read'], iat: now, exp: now + 600 });
    const whoami = await h.request('GET', '/v1/whoami', { token: delegated, signWith: bob.privateKey });
    expect(whoami.statusCode).toBe(200);
    expect(whoami.json()).toMatchObject({ name: null, chain: [{ name: 'alice laptop' }, { name: null }] });
  });
});
