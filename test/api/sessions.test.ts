/**
 * Sessions (SPEC §5): every token of a tenant seen in use, counted in memory and written by a flush
 * (at most once a second per server), never by the request itself; DELETE ends a session by revoking
 * its token (an issued one, or a block delegated offline). The tests set the flusher's interval to an
 * hour and flush explicitly instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, flushSessions } from '../../src/api/app.js';
import { ManualClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import type { Scope } from '../../src/tokens/scopes.js';
import { generateKeyPair, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken } from '../../src/tokens/mint.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { expectProblem, snapshotState } from './expectations.js';

const A = 'sess-a';
const B = 'sess-b';

interface Session {
  token_id: string;
  tenant_id: string;
  name: string | null;
  subject: string;
  scope: string[];
  chain: string[];
  first_seen: string;
  last_seen: string;
  last_address: string;
  request_count: number;
  revoked: boolean;
}

describe('sessions', () => {
  let h: Harness;
  let clock: ManualClock;
  let aAdmin: string;
  let bAdmin: string;

  beforeAll(async () => {
    clock = new ManualClock(Date.parse('2026-03-01T10:00:00Z'));
    // Only the explicit flushes write: the flusher's own second would race the assertions.
    h = await startHarness({ clock, app: { sessionFlushMs: 3_600_000 } });
    await h.createTenant(A);
    await h.createTenant(B);
    aAdmin = (await h.issueToken(A, 'service:tenant-admin')).token;
    bAdmin = (await h.issueToken(B, 'service:tenant-admin')).token;
  });
  afterAll(() => h.close());

  async function sessionsOf(token: string, query = ''): Promise<Session[]> {
    const res = await h.request('GET', `/v1/sessions${query}`, { token });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ items: Session[] }>().items;
  }

  async function sessionRows(): Promise<number> {
    return (await h.store.db.selectFrom('sessions').selectAll().execute()).length;
  }

  it('a token used N times is one session with count N, its subject, scopes and times, written only by the flush', async () => {
    await flushSessions(h.app);
    const reader = await h.issueToken(A, 'tenant:read');
    const rowsBefore = await sessionRows();
    const first = clock.now();
    for (let i = 0; i < 5; i++) {
      expect((await h.request('GET', '/v1/vms', { token: reader.token })).statusCode).toBe(200);
      clock.advance(1000);
    }
    // Requests write nothing: the table is as it was until the flush.
    expect(await sessionRows()).toBe(rowsBefore);
    await flushSessions(h.app);
    const session = (await sessionsOf(aAdmin)).find((s) => s.token_id === reader.tokenId);
    expect(session).toEqual({
      token_id: reader.tokenId,
      tenant_id: A,
      name: null,
      subject: publicKeyText(reader.keys),
      scope: ['tenant:read'],
      chain: [reader.tokenId],
      first_seen: new Date(first).toISOString(),
      last_seen: new Date(first + 4000).toISOString(),
      last_address: '127.0.0.1',
      request_count: 5,
      revoked: false,
    });
  });

  it('counts add up across flushes, and times widen', async () => {
    const reader = await h.issueToken(A, 'tenant:read');
    const start = clock.now();
    await h.request('GET', '/v1/vms', { token: reader.token });
    await flushSessions(h.app);
    clock.advance(60_000);
    await h.request('GET', '/v1/vms', { token: reader.token });
    await h.request('GET', '/v1/whoami', { token: reader.token });
    await flushSessions(h.app);
    const session = (await sessionsOf(aAdmin)).find((s) => s.token_id === reader.tokenId)!;
    expect(session.request_count).toBe(3);
    expect(session.first_seen).toBe(new Date(start).toISOString());
    expect(session.last_seen).toBe(new Date(start + 60_000).toISOString());
  });

  it('a refused request is not a use: a token lacking the scope records nothing', async () => {
    const reader = await h.issueToken(A, 'tenant:read');
    expectProblem(await h.request('POST', '/v1/vms', { token: reader.token, body: { name: 'nope', vcpus: 1, memory_mb: 256, disk_gb: 1 } }), 403);
    await flushSessions(h.app);
    expect((await sessionsOf(aAdmin)).some((s) => s.token_id === reader.tokenId)).toBe(false);
  });

  it("tenant B never sees A's sessions, and B's DELETE of one is 404 and changes nothing", async () => {
    const reader = await h.issueToken(A, 'tenant:read');
    await h.request('GET', '/v1/vms', { token: reader.token });
    await flushSessions(h.app);
    const seenByB = await sessionsOf(bAdmin);
    expect(seenByB.every((s) => s.tenant_id === B)).toBe(true);
    expect(seenByB.some((s) => s.token_id === reader.tokenId)).toBe(false);
    const before = await snapshotState(h);
    const sessionsBefore = await h.store.db.selectFrom('sessions').selectAll().orderBy('token_id').execute();
    expect(expectProblem(await h.request('DELETE', `/v1/sessions/${reader.tokenId}`, { token: bAdmin }), 404).code).toBe('not_found');
    expect(await snapshotState(h)).toEqual(before);
    expect(await h.store.db.selectFrom('sessions').selectAll().orderBy('token_id').execute()).toEqual(sessionsBefore);
    expect((await h.request('GET', '/v1/vms', { token: reader.token })).statusCode).toBe(200);
    // B naming A's tenant is refused as for every other list.
    expectProblem(await h.request('GET', `/v1/sessions?tenant_id=${A}`, { token: bAdmin }), 403);
  });

  it('DELETE ends the session: the token is revoked, TOKEN_REVOKED is written and its next request is 401', async () => {
    const reader = await h.issueToken(A, 'tenant:read');
    await h.request('GET', '/v1/vms', { token: reader.token });
    await flushSessions(h.app);
    const res = await h.request('DELETE', `/v1/sessions/${reader.tokenId}`, { token: aAdmin });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<Session>()).toMatchObject({ token_id: reader.tokenId, revoked: true });
    const revoked = await h.ledgerLines({ limit: 100_000, eventType: 'TOKEN_REVOKED' });
    expect(revoked.some((line) => (line.subject_ids as { token_id: string }).token_id === reader.tokenId)).toBe(true);
    expect(expectProblem(await h.request('GET', '/v1/vms', { token: reader.token }), 401).detail).toMatch(/revoked/);
    expect((await sessionsOf(aAdmin)).find((s) => s.token_id === reader.tokenId)?.revoked).toBe(true);
  });

  it('a platform admin lists and ends a tenant’s sessions by naming it, and must name one', async () => {
    const reader = await h.issueToken(B, 'tenant:read');
    await h.request('GET', '/v1/vms', { token: reader.token });
    await flushSessions(h.app);
    expect((await sessionsOf(h.adminToken, `?tenant_id=${B}`)).some((s) => s.token_id === reader.tokenId)).toBe(true);
    expect(expectProblem(await h.request('GET', '/v1/sessions', { token: h.adminToken }), 400).field).toBe('tenant_id');
    expectProblem(await h.request('GET', '/v1/sessions?tenant_id=no-such-tenant', { token: h.adminToken }), 404);
    expect((await h.request('DELETE', `/v1/sessions/${reader.tokenId}?tenant_id=${B}`, { token: h.adminToken })).statusCode).toBe(200);
    expectProblem(await h.request('GET', '/v1/vms', { token: reader.token }), 401);
  });

  it('platform tokens are no tenant’s session', async () => {
    await h.request('GET', '/v1/tenants', { token: h.adminToken });
    await flushSessions(h.app);
    const rows = await h.store.db.selectFrom('sessions').select('tenant_id').execute();
    expect(rows.every((row) => row.tenant_id === A || row.tenant_id === B)).toBe(true);
  });

  it('lists page by token id with ?limit and cursor', async () => {
    for (let i = 0; i < 3; i++) await h.request('GET', '/v1/vms', { token: (await h.issueToken(A, 'tenant:read')).token });
    await flushSessions(h.app);
    const all = await sessionsOf(aAdmin, '?limit=1000');
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await h.request('GET', `/v1/sessions?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: aAdmin });
      const page = res.json<{ items: Session[]; next_cursor: string | null }>();
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((s) => s.token_id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual(all.map((s) => s.token_id));
    expect([...seen].sort()).toEqual(seen);
  });

  describe('delegated tokens', () => {
    let holder: KeyPair;
    let root: { token: string; token_id: string };

    beforeAll(async () => {
      holder = generateKeyPair();
      const res = await h.request('POST', `/v1/tenants/${A}/tokens`, {
        token: h.adminToken,
        body: { subject_pubkey: publicKeyText(holder), scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true },
      });
      root = res.json();
    });

    it('a delegated token is its own session, keyed by its final block id, with the whole chain', async () => {
      const bob = generateKeyPair();
      const now = Math.floor(clock.now() / 1000);
      const delegated = delegateToken(root.token, holder.privateKey, { sub: publicKeyText(bob), scp: ['tenant:read'], iat: now, exp: now + 600 });
      const whoami = await h.request('GET', '/v1/whoami', { token: delegated, signWith: bob.privateKey });
      expect(whoami.statusCode, whoami.body).toBe(200);
      const blockId = whoami.json<{ token_id: string }>().token_id;
      expect(blockId).not.toBe(root.token_id);
      await h.request('GET', '/v1/vms', { token: delegated, signWith: bob.privateKey });
      await flushSessions(h.app);
      const session = (await sessionsOf(aAdmin)).find((s) => s.token_id === blockId);
      expect(session).toMatchObject({ subject: publicKeyText(bob), scope: ['tenant:read'], chain: [root.token_id, blockId], request_count: 2 });
    });

    it('a session is shown by its token’s name: an issued token’s from its record, a delegated block’s from its own claims', async () => {
      const named = await h.request('POST', `/v1/tenants/${A}/tokens`, {
        token: h.adminToken,
        body: { subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:read', expires_in_seconds: 600, name: 'dashboard' },
      });
      const issued = named.json<{ token: string; token_id: string }>();
      const bob = generateKeyPair();
      const now = Math.floor(clock.now() / 1000);
      const device = delegateToken(root.token, holder.privateKey, { sub: publicKeyText(bob), scp: ['tenant:read'], iat: now, exp: now + 600, nam: 'bob’s phone' });
      const unnamed = delegateToken(root.token, holder.privateKey, { sub: publicKeyText(bob), scp: ['tenant:user'], iat: now, exp: now + 600 });
      const deviceId = (await h.request('GET', '/v1/whoami', { token: device, signWith: bob.privateKey })).json<{ token_id: string }>().token_id;
      const unnamedId = (await h.request('GET', '/v1/whoami', { token: unnamed, signWith: bob.privateKey })).json<{ token_id: string }>().token_id;
      expect((await h.request('GET', '/v1/vms', { token: issued.token })).statusCode).toBe(200);
      await flushSessions(h.app);
      const names = new Map((await sessionsOf(aAdmin, '?limit=1000')).map((session) => [session.token_id, session.name]));
      expect(names.get(issued.token_id)).toBe('dashboard');
      expect(names.get(deviceId)).toBe('bob’s phone');
      expect(names.get(unnamedId)).toBeNull();
    });
  });
});

describe('ending the session of a block delegated offline', () => {
  let h: Harness;
  let base: string;
  let adminOfA: string;
  let holder: KeyPair;
  let root: { token: string; token_id: string };

  beforeAll(async () => {
    h = await startHarness({ app: { sessionFlushMs: 3_600_000 } });
    await h.createTenant(A);
    adminOfA = (await h.issueToken(A, 'service:tenant-admin')).token;
    holder = generateKeyPair();
    const res = await h.request('POST', `/v1/tenants/${A}/tokens`, {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(holder), scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true },
    });
    root = res.json();
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  });
  afterAll(() => h.close());

  /** A request over a real socket, signed by `key` as ppn signs (RFC 9421). */
  async function overHttp(method: string, path: string, token: string, key: KeyPair): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    Object.assign(headers, signRequest({ method, ...splitTarget(path), headers }, { privateKey: key.privateKey, clock: h.clock }));
    return fetch(`${base}${path}`, { method, headers });
  }

  function delegateFrom(token: string, from: KeyPair, to: KeyPair, claims: { scp: Scope[]; nam?: string }): string {
    const now = Math.floor(h.clock.now() / 1000);
    return delegateToken(token, from.privateKey, { sub: publicKeyText(to), iat: now, exp: now + 600, ...claims });
  }

  it('DELETE revokes the block: 200, TOKEN_REVOKED without an issued row, and the device and every token below it get 401', async () => {
    const device = generateKeyPair();
    const below = generateKeyPair();
    const deviceToken = delegateFrom(root.token, holder, device, { scp: ['tenant:input'], nam: 'build box' });
    const belowToken = delegateFrom(deviceToken, device, below, { scp: ['tenant:read'] });
    const whoami = await overHttp('GET', '/v1/whoami', deviceToken, device);
    expect(whoami.status).toBe(200);
    const blockId = ((await whoami.json()) as { token_id: string }).token_id;
    expect((await overHttp('GET', '/v1/vms', belowToken, below)).status).toBe(200);
    await flushSessions(h.app);
    const tokensBefore = await h.store.db.selectFrom('tokens').selectAll().orderBy('token_id').execute();

    const res = await fetch(`${base}/v1/sessions/${blockId}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminOfA}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ token_id: blockId, name: 'build box', chain: [root.token_id, blockId], revoked: true });

    const revoked = await h.ledgerLines({ limit: 100, eventType: 'TOKEN_REVOKED', tokenId: blockId });
    expect(revoked.filter((entry) => (entry.subject_ids as { token_id?: string }).token_id === blockId).map((entry) => entry.data)).toEqual([
      { issued: false, name: 'build box' },
    ]);
    // A revocation record, not an issued-token row: the tokens table is as it was.
    expect(await h.store.db.selectFrom('tokens').selectAll().orderBy('token_id').execute()).toEqual(tokensBefore);

    for (const [token, key] of [
      [deviceToken, device],
      [belowToken, below],
    ] as const) {
      const refused = await overHttp('GET', '/v1/vms', token, key);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { detail: string }).detail).toMatch(/revoked/);
    }
    // Only the block and what is below it: its root still works.
    expect((await overHttp('GET', '/v1/vms', root.token, holder)).status).toBe(200);
  });

  it('a second DELETE of the same session changes nothing more', async () => {
    const device = generateKeyPair();
    const deviceToken = delegateFrom(root.token, holder, device, { scp: ['tenant:read'] });
    const blockId = ((await (await overHttp('GET', '/v1/whoami', deviceToken, device)).json()) as { token_id: string }).token_id;
    await flushSessions(h.app);
    expect((await h.request('DELETE', `/v1/sessions/${blockId}`, { token: adminOfA })).statusCode).toBe(200);
    const entries = await h.ledgerCount();
    const again = await h.request('DELETE', `/v1/sessions/${blockId}`, { token: adminOfA });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ token_id: blockId, revoked: true });
    expect(await h.ledgerCount()).toBe(entries);
  });
});

describe('sessions across a restart', () => {
  it('a server closed and started again on the same store still lists the sessions it counted', async () => {
    const h = await startHarness();
    try {
      await h.createTenant(A);
      const admin = await h.issueToken(A, 'service:tenant-admin');
      const reader = await h.issueToken(A, 'tenant:read');
      for (let i = 0; i < 3; i++) await h.request('GET', '/v1/vms', { token: reader.token });
      // Closing flushes what the server holds: nothing waits for the next second.
      await h.app.close();
      const again = await buildApp({ store: h.store, keyring: h.keyring, clock: h.clock });
      try {
        const res = await again.inject({ method: 'GET', url: '/v1/sessions', headers: { authorization: `Bearer ${admin.token}` } });
        expect(res.statusCode, res.body).toBe(200);
        const session = res.json<{ items: Session[] }>().items.find((s) => s.token_id === reader.tokenId);
        expect(session?.request_count).toBe(3);
      } finally {
        await again.close();
      }
    } finally {
      await h.close();
    }
  });
});
