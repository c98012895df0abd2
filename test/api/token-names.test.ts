/**
 * Token names (SPEC §5): an optional name and description, so a token list is readable by people.
 * An issued token's are given when issuing and kept in its record; a block delegated offline carries
 * its own in its signed claims (`ppn token delegate --name`). Both are shown in lists, whoami,
 * sessions and the ledger (TOKEN_ISSUED, TOKEN_REVOKED, and the actor of entries a named token caused).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flushSessions } from '../../src/api/app.js';
import { formatEntry } from '../../src/cli/fs-read.js';
import type { LedgerEntry } from '../../src/ledger/entry.js';
import { readEntries } from '../../src/store/ledger.js';
import { generateKeyPair, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken } from '../../src/tokens/mint.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { expectProblem } from './expectations.js';

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

  it('whoami shows each block’s name: the root’s from its record, a delegated block’s from its claims', async () => {
    const alice = generateKeyPair();
    const bob = generateKeyPair();
    const carol = generateKeyPair();
    const root = await issue({ name: 'alice laptop', proof_of_possession: true }, alice);
    const now = Math.floor(h.clock.now() / 1000);
    const named = delegateToken(root.token, alice.privateKey, { sub: publicKeyText(bob), scp: ['tenant:read'], iat: now, exp: now + 600, nam: 'bob phone' });
    const below = delegateToken(named, bob.privateKey, { sub: publicKeyText(carol), scp: ['tenant:read'], iat: now, exp: now + 300 });
    const whoami = await h.request('GET', '/v1/whoami', { token: named, signWith: bob.privateKey });
    expect(whoami.statusCode).toBe(200);
    expect(whoami.json()).toMatchObject({ name: 'bob phone', chain: [{ name: 'alice laptop' }, { name: 'bob phone' }] });
    // A name is not inherited: the block below has none of its own.
    const belowWhoami = await h.request('GET', '/v1/whoami', { token: below, signWith: carol.privateKey });
    expect(belowWhoami.json()).toMatchObject({ name: null, chain: [{ name: 'alice laptop' }, { name: 'bob phone' }, { name: null }] });
  });

  it('issuing refuses a name with a bidirectional override or a lone surrogate, as 400 naming the field, and issues nothing', async () => {
    for (const name of ['invoice\u202egpj.exe', 'half \ud83d']) {
      const before = await h.ledgerCount();
      const res = await h.request('POST', `/v1/tenants/${A}/tokens`, {
        token: h.adminToken,
        body: { subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:read', expires_in_seconds: 60, name },
      });
      expect(expectProblem(res, 400)).toMatchObject({ field: 'name', detail: expect.stringContaining('printable text') });
      expect(await h.ledgerCount()).toBe(before);
    }
  });
});

describe('token names in the ledger', () => {
  let h: Harness;
  let alice: KeyPair;
  let root: { token: string; token_id: string };

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A);
    alice = generateKeyPair();
    const res = await h.request('POST', `/v1/tenants/${A}/tokens`, {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(alice), scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true, name: 'alice laptop' },
    });
    root = res.json();
  });
  afterAll(async () => {
    await h.close();
  });

  function delegateTo(holder: KeyPair, nam?: string): string {
    const now = Math.floor(h.clock.now() / 1000);
    return delegateToken(root.token, alice.privateKey, { sub: publicKeyText(holder), scp: ['tenant:input'], iat: now, exp: now + 600, ...(nam ? { nam } : {}) });
  }

  async function createVm(name: string, token: string, key: KeyPair): Promise<Record<string, unknown>> {
    const res = await h.request('POST', '/v1/vms', { token, signWith: key.privateKey, body: { name, vcpus: 1, memory_mb: 256, disk_gb: 1 } });
    expect(res.statusCode, res.body).toBe(201);
    const vmId = res.json<{ vm_id: string }>().vm_id;
    const [entry] = await h.ledgerLines({ eventType: 'VM_CREATED', vmId, limit: 10 });
    return entry!;
  }

  it('an entry written under a named token records the name in its actor: a delegated block’s, or an issued token’s', async () => {
    const bob = generateKeyPair();
    const byDevice = await createVm('by-device', delegateTo(bob, 'bob phone'), bob);
    expect(byDevice.actor).toEqual({ token_id: expect.stringMatching(/^tok-/), subject: publicKeyText(bob), scope: ['tenant:input'], name: 'bob phone' });
    const byRoot = await createVm('by-root', root.token, alice);
    expect(byRoot.actor).toEqual({ token_id: root.token_id, subject: publicKeyText(alice), scope: ['tenant:input'], name: 'alice laptop' });
  });

  it('an unnamed token’s actor has no name at all, so its entry has the bytes it had before names', async () => {
    const carol = generateKeyPair();
    const entry = await createVm('by-unnamed', delegateTo(carol), carol);
    expect(Object.keys(entry.actor as object)).toEqual(['token_id', 'subject', 'scope']);
  });

  it('the actor’s name is last in the actor, and service-fs read shows it quoted beside the token id', async () => {
    const dave = generateKeyPair();
    const entry = await createVm('by-dave', delegateTo(dave, 'dave "ops" box'), dave);
    const [stored] = await readEntries(h.store.db, { eventType: 'VM_CREATED', vmId: (entry.subject_ids as { vm_id: string }).vm_id, limit: 1 });
    expect(stored!.line).toContain(`"scope":["tenant:input"],"name":"dave \\"ops\\" box"},"request_id"`);
    const line = formatEntry(JSON.parse(stored!.line) as LedgerEntry);
    expect(line).toContain(`actor=${(entry.actor as { token_id: string }).token_id}("dave \\"ops\\" box") `);
  });

  it('TOKEN_REVOKED records the name of what it revoked: an issued token’s, or a delegated block’s once its session is known', async () => {
    const erin = generateKeyPair();
    const device = delegateTo(erin, 'erin tablet');
    const blockId = (await h.request('GET', '/v1/whoami', { token: device, signWith: erin.privateKey })).json<{ token_id: string }>().token_id;
    await flushSessions(h.app);
    expect((await h.request('DELETE', `/v1/tenants/${A}/tokens/${blockId}`, { token: h.adminToken })).statusCode).toBe(200);
    const named = await h.request('POST', `/v1/tenants/${A}/tokens`, {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:read', expires_in_seconds: 60, name: 'kiosk' },
    });
    const kiosk = named.json<{ token_id: string }>().token_id;
    expect((await h.request('DELETE', `/v1/tenants/${A}/tokens/${kiosk}`, { token: h.adminToken })).statusCode).toBe(200);
    const revoked = await h.ledgerLines({ eventType: 'TOKEN_REVOKED', limit: 100 });
    const dataOf = (id: string) => revoked.find((entry) => (entry.subject_ids as { token_id: string }).token_id === id)?.data;
    expect(dataOf(blockId)).toEqual({ issued: false, name: 'erin tablet' });
    expect(dataOf(kiosk)).toEqual({ name: 'kiosk' });
  });
});
