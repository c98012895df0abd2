/**
 * Sessions (SPEC §5): every token of a tenant seen in use, counted in memory and written by a flush
 * (at most once a second per server), never by the request itself; DELETE ends a session by revoking
 * its token. The tests set the flusher's interval to an hour and flush explicitly instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, flushSessions } from '../../src/api/app.js';
import { ManualClock } from '../../src/clock.js';
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

    it('DELETE of a delegated session revokes its block: the token below the root is refused, the root still works', async () => {
      const bob = generateKeyPair();
      const now = Math.floor(clock.now() / 1000);
      const delegated = delegateToken(root.token, holder.privateKey, { sub: publicKeyText(bob), scp: ['tenant:read'], iat: now, exp: now + 600 });
      const whoami = await h.request('GET', '/v1/whoami', { token: delegated, signWith: bob.privateKey });
      const blockId = whoami.json<{ token_id: string }>().token_id;
      await flushSessions(h.app);
      const ended = await h.request('DELETE', `/v1/sessions/${blockId}`, { token: aAdmin });
      expect(ended.statusCode, ended.body).toBe(200);
      expect(ended.json<Session>()).toMatchObject({ token_id: blockId, chain: [root.token_id, blockId], revoked: true });
      expect((await h.request('GET', '/v1/whoami', { token: delegated, signWith: bob.privateKey })).statusCode).toBe(401);
      expect((await h.request('GET', '/v1/whoami', { token: root.token, signWith: holder.privateKey })).statusCode).toBe(200);
      const entries = (await h.request('GET', `/v1/ledger/entries?token_id=${blockId}&event_type=TOKEN_REVOKED`, { token: h.adminToken })).json<{
        items: { entry: { data: unknown } }[];
      }>().items;
      expect(entries.map((e) => e.entry.data)).toEqual([{ issued: false }]);
    });
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
