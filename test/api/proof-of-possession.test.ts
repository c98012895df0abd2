/**
 * Proof of possession at the API (SPEC §5, RFC 9421): a request under a `pop` token, a `node:agent`
 * token, or any token of a tenant with `require_pop`, is admitted only with a signature by the final
 * holder's key. Every refusal is a 401 naming the failed part in `signature_error` and changes
 * nothing. Real app through inject, on whichever store the run uses; the clock is the harness's.
 */
import type { KeyObject } from 'node:crypto';
import { createSigner, httpbis } from 'http-message-signatures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { contentDigest } from '../../src/httpsig/digest.js';
import { signMessage, signRequest } from '../../src/httpsig/sign.js';
import { generateKeyPair, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken } from '../../src/tokens/mint.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { expectProblem, snapshotState } from './expectations.js';

const A = 'acme';
const B = 'bravo';
const NEW_VM = { name: 'signed-vm', disk_gb: 1 };

describe('proof of possession', () => {
  let h: Harness;
  let clock: ManualClock;
  let holder: KeyPair;
  let popToken: string;

  /** Issues a token through the API for a fresh key, with `proof_of_possession` as given. */
  async function issue(
    tenantId: string,
    scope: string,
    proof: boolean | undefined,
  ): Promise<{ status: number; token: string; keys: KeyPair; body: Record<string, unknown> }> {
    const keys = generateKeyPair();
    const res = await h.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(keys), scope, expires_in_seconds: 3600, ...(proof !== undefined ? { proof_of_possession: proof } : {}) },
    });
    const body = res.json<Record<string, unknown>>();
    return { status: res.statusCode, token: body.token as string, keys, body };
  }

  /** The fields `ppn` would add, signed with `key` by `signingClock` (default: the server's clock). */
  function signedFields(method: string, url: string, body: string | undefined, key: KeyObject, signingClock = clock): Record<string, string> {
    return signRequest({ method, ...splitTarget(url), headers: {}, body: body === undefined ? undefined : Buffer.from(body) }, { privateKey: key, clock: signingClock });
  }

  /** Sends a request with the token and exactly these extra header fields. */
  function send(method: string, url: string, token: string, headers: Record<string, string>, body?: string) {
    return h.request(method, url, {
      token,
      headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { payload: body } : {}),
    });
  }

  /** Expects 401 with `signature_error: code`, and that nothing changed. */
  async function expectRefused(code: string, attempt: () => Promise<Awaited<ReturnType<typeof send>>>): Promise<string> {
    const before = await snapshotState(h);
    const problem = expectProblem(await attempt(), 401);
    expect(problem.code).toBe('unauthenticated');
    expect(problem.signature_error).toBe(code);
    expect(await snapshotState(h)).toEqual(before);
    return problem.detail;
  }

  beforeAll(async () => {
    clock = new ManualClock(Date.now());
    h = await startHarness({ clock });
    await h.createTenant(A, { max_vms: 100, storage_quota_gb: 1000 });
    await h.createTenant(B);
    await h.issueToken(A, 'tenant:read');
    const issued = await issue(A, 'tenant:input', true);
    expect(issued.status).toBe(201);
    expect(issued.body.proof_of_possession).toBe(true);
    popToken = issued.token;
    holder = issued.keys;
  });
  afterAll(async () => {
    await h.close();
  });

  describe('a pop token issued through the API', () => {
    it('works on a GET route when signed by its holder', async () => {
      const res = await h.request('GET', '/v1/vms?limit=5', { token: popToken, signWith: holder.privateKey });
      expect(res.statusCode, res.body).toBe(200);
    });

    it('works on a POST route when signed by its holder, body digest included', async () => {
      const res = await h.request('POST', '/v1/vms', { token: popToken, body: { name: 'pop-post', disk_gb: 1 }, signWith: holder.privateKey });
      expect(res.statusCode, res.body).toBe(201);
    });

    it('works when signed by a second RFC 9421 implementation (http-message-signatures)', async () => {
      const keyid = publicKeyText(holder);
      const sign = async (method: string, url: string, headers: Record<string, string>) => {
        const signed = await httpbis.signMessage(
          {
            key: createSigner(holder.privateKey, 'ed25519', keyid),
            name: 'other',
            fields: ['@method', '@path', '@query', ...('content-digest' in headers ? ['content-digest'] : [])],
            params: ['created', 'keyid', 'nonce', 'alg'],
            paramValues: { created: new Date(clock.now()), nonce: `lib-${method}-${url}` },
          },
          { method, url: `http://localhost${url}`, headers },
        );
        return Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), String(value)]));
      };
      const get = await send('GET', '/v1/vms', popToken, await sign('GET', '/v1/vms', {}));
      expect(get.statusCode, get.body).toBe(200);
      const body = JSON.stringify({ name: 'lib-signed', disk_gb: 1 });
      const post = await send('POST', '/v1/vms', popToken, await sign('POST', '/v1/vms', { 'content-digest': contentDigest(Buffer.from(body)) }), body);
      expect(post.statusCode, post.body).toBe(201);
    });

    it('issues only tokens that demand proof of possession too: by default, and refusing false with nothing changed', async () => {
      const admin = await issue(A, 'service:tenant-admin', true);
      const asked = (proof: boolean | undefined) => {
        const keys = generateKeyPair();
        const body = {
          subject_pubkey: publicKeyText(keys),
          scope: 'tenant:read',
          expires_in_seconds: 600,
          ...(proof !== undefined ? { proof_of_possession: proof } : {}),
        };
        return h.request('POST', `/v1/tenants/${A}/tokens`, { token: admin.token, body, signWith: admin.keys.privateKey });
      };
      const inherited = await asked(undefined);
      expect(inherited.statusCode, inherited.body).toBe(201);
      expect(inherited.json()).toMatchObject({ proof_of_possession: true });
      const before = await snapshotState(h);
      const problem = expectProblem(await asked(false), 403);
      expect(problem.code).toBe('forbidden');
      expect(problem.detail).toMatch(/proof of possession/);
      expect(await snapshotState(h)).toEqual(before);
    });

    it('shows proof_of_possession in the tenant token list', async () => {
      const res = await h.request('GET', `/v1/tenants/${A}/tokens`, { token: h.adminToken });
      const items = res.json<{ items: { proof_of_possession: boolean }[] }>().items;
      expect(items.some((t) => t.proof_of_possession)).toBe(true);
      expect(items.some((t) => !t.proof_of_possession)).toBe(true);
    });
  });

  describe('every failed proof is 401 naming the part that failed, and changes nothing', () => {
    const body = JSON.stringify(NEW_VM);

    it('a request with no signature → signature_missing', async () => {
      const detail = await expectRefused('signature_missing', () => send('POST', '/v1/vms', popToken, {}, body));
      expect(detail).toMatch(/proof of possession/);
    });

    it('a signature created 61 s ago → signature_expired', async () => {
      const fields = signedFields('POST', '/v1/vms', body, holder.privateKey);
      clock.advance(61_000);
      await expectRefused('signature_expired', () => send('POST', '/v1/vms', popToken, fields, body));
    });

    it('a signature created 61 s ahead of the server → signature_not_yet_valid', async () => {
      const fields = signedFields('POST', '/v1/vms', body, holder.privateKey, new ManualClock(clock.now() + 61_000));
      await expectRefused('signature_not_yet_valid', () => send('POST', '/v1/vms', popToken, fields, body));
    });

    it('a nonce replayed to the same server → nonce_reused', async () => {
      const fields = signedFields('POST', '/v1/vms', JSON.stringify({ name: 'once', disk_gb: 1 }), holder.privateKey);
      const first = await send('POST', '/v1/vms', popToken, fields, JSON.stringify({ name: 'once', disk_gb: 1 }));
      expect(first.statusCode, first.body).toBe(201);
      await expectRefused('nonce_reused', () => send('POST', '/v1/vms', popToken, fields, JSON.stringify({ name: 'once', disk_gb: 1 })));
    });

    it('a nonce replayed on a GET → nonce_reused', async () => {
      const fields = signedFields('GET', '/v1/whoami', undefined, holder.privateKey);
      expect((await send('GET', '/v1/whoami', popToken, fields)).statusCode).toBe(200);
      await expectRefused('nonce_reused', () => send('GET', '/v1/whoami', popToken, fields));
    });

    it('another body than the one signed → digest_mismatch', async () => {
      const fields = signedFields('POST', '/v1/vms', body, holder.privateKey);
      await expectRefused('digest_mismatch', () => send('POST', '/v1/vms', popToken, fields, JSON.stringify({ ...NEW_VM, disk_gb: 2 })));
    });

    it('another body with its own Content-Digest, under the old signature → signature_invalid', async () => {
      const other = JSON.stringify({ ...NEW_VM, disk_gb: 2 });
      const fields = { ...signedFields('POST', '/v1/vms', body, holder.privateKey), 'content-digest': contentDigest(Buffer.from(other)) };
      await expectRefused('signature_invalid', () => send('POST', '/v1/vms', popToken, fields, other));
    });

    it('another path than the one signed → signature_invalid', async () => {
      const fields = signedFields('POST', `/v1/vms?tenant_id=${A}`, body, holder.privateKey);
      await expectRefused('signature_invalid', () => send('POST', `/v1/tenants/${A}/tokens?tenant_id=${A}`, popToken, fields, body));
    });

    it('another query than the one signed → signature_invalid', async () => {
      const fields = signedFields('GET', '/v1/vms?limit=1', undefined, holder.privateKey);
      await expectRefused('signature_invalid', () => send('GET', '/v1/vms?limit=2', popToken, fields));
    });

    it('a signature by another key, naming that key → wrong_key', async () => {
      const fields = signedFields('POST', '/v1/vms', body, generateKeyPair().privateKey);
      await expectRefused('wrong_key', () => send('POST', '/v1/vms', popToken, fields, body));
    });

    it('a signature by another key, claiming the holder key → signature_invalid', async () => {
      const stranger = generateKeyPair().privateKey;
      const request = { method: 'POST', path: '/v1/vms', query: '', headers: { 'content-digest': contentDigest(Buffer.from(body)) }, body: Buffer.from(body) };
      const params = { created: Math.floor(clock.now() / 1000), nonce: 'claimed-holder', keyid: publicKeyText(holder), alg: 'ed25519' };
      const fields = signMessage(request, { label: 'sig1', components: ['@method', '@path', '@query', 'content-digest'], params, privateKey: stranger });
      await expectRefused('signature_invalid', () => send('POST', '/v1/vms', popToken, { ...request.headers, ...fields }, body));
    });

    it('a Signature-Input without @query → components_missing', async () => {
      const params = { created: Math.floor(clock.now() / 1000), nonce: 'no-query', keyid: publicKeyText(holder) };
      const fields = signMessage(
        { method: 'GET', path: '/v1/vms', query: 'limit=1', headers: {} },
        { label: 'sig1', components: ['@method', '@path'], params, privateKey: holder.privateKey },
      );
      await expectRefused('components_missing', () => send('GET', '/v1/vms?limit=1', popToken, { ...fields }));
    });

    it('a Signature-Input that leaves the body out → components_missing', async () => {
      const request = { method: 'POST', path: '/v1/vms', query: '', headers: { 'content-digest': contentDigest(Buffer.from(body)) }, body: Buffer.from(body) };
      const params = { created: Math.floor(clock.now() / 1000), nonce: 'no-digest', keyid: publicKeyText(holder) };
      const fields = signMessage(request, { label: 'sig1', components: ['@method', '@path', '@query'], params, privateKey: holder.privateKey });
      await expectRefused('components_missing', () => send('POST', '/v1/vms', popToken, { ...request.headers, ...fields }, body));
    });

    it('a Signature-Input that is not a structured dictionary → signature_malformed', async () => {
      const fields = { ...signedFields('GET', '/v1/vms', undefined, holder.privateKey), 'signature-input': 'sig1=("@method"' };
      await expectRefused('signature_malformed', () => send('GET', '/v1/vms', popToken, fields));
    });

    it('an alg other than ed25519 → algorithm_unsupported', async () => {
      const params = { created: Math.floor(clock.now() / 1000), nonce: 'rsa', keyid: publicKeyText(holder), alg: 'rsa-pss-sha512' };
      const fields = signMessage(
        { method: 'GET', path: '/v1/vms', query: '', headers: {} },
        { label: 'sig1', components: ['@method', '@path', '@query'], params, privateKey: holder.privateKey },
      );
      await expectRefused('algorithm_unsupported', () => send('GET', '/v1/vms', popToken, { ...fields }));
    });

    it('a failed proof spends no rate-limit slot: a tenant at its limit still admits its holder', async () => {
      await h.createTenant('tight', { api_rate_limit_rpm: 1 });
      const tight = await issue('tight', 'tenant:read', true);
      for (let i = 0; i < 3; i++) await expectRefused('signature_missing', () => send('GET', '/v1/vms', tight.token, {}));
      const res = await h.request('GET', '/v1/vms', { token: tight.token, signWith: tight.keys.privateKey });
      expect(res.statusCode, res.body).toBe(200);
    });
  });

  describe('delegated tokens', () => {
    it('a pop root delegated offline works with the final holder signature, and only with it', async () => {
      const bob = generateKeyPair();
      const now = Math.floor(clock.now() / 1000);
      const delegated = delegateToken(popToken, holder.privateKey, { sub: publicKeyText(bob), scp: ['tenant:read'], iat: now, exp: now + 600 });
      const res = await h.request('GET', '/v1/whoami', { token: delegated, signWith: bob.privateKey });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json<{ subject: string }>().subject).toBe(publicKeyText(bob));
      // The root's holder no longer holds the delegated token.
      await expectRefused('wrong_key', () => h.request('GET', '/v1/whoami', { token: delegated, signWith: holder.privateKey }));
      await expectRefused('signature_missing', () => h.request('GET', '/v1/whoami', { token: delegated }));
    });
  });

  describe('node:agent tokens always prove possession', () => {
    it('without a signature → 401; signed → the route answers', async () => {
      const agent = await issue(A, 'node:agent', undefined);
      expect(agent.body.proof_of_possession).toBe(false);
      // Its own route: enrolling its node (a node token is refused on every other route).
      const enroll = { node_id: 'pop-node', capacity: { cpus: 1, memory_mb_total: 1024, memory_mb_available: 512, disk_gb_available: 10, kvm: false, load1: 0 } };
      const detail = await expectRefused('signature_missing', () => send('POST', '/v1/nodes', agent.token, {}, JSON.stringify(enroll)));
      expect(detail).toMatch(/node:agent/);
      expect((await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: enroll })).statusCode).toBe(201);
    });
  });

  describe('require_pop on a tenant', () => {
    it('only a platform admin may set it', async () => {
      const { token } = await h.issueToken(B, 'service:tenant-admin');
      const before = await snapshotState(h);
      expect(expectProblem(await h.request('PATCH', `/v1/tenants/${B}`, { token, body: { require_pop: true } }), 403).code).toBe('forbidden');
      expect(await snapshotState(h)).toEqual(before);
    });

    it('is shown on the tenant, recorded in the ledger, refuses issuing bearer tokens and demands a signature from existing ones', async () => {
      const bearer = await issue(B, 'tenant:read', undefined);
      expect(bearer.status).toBe(201);
      expect((await h.request('GET', `/v1/tenants/${B}`, { token: h.adminToken })).json()).toMatchObject({ require_pop: false });

      const patched = await h.request('PATCH', `/v1/tenants/${B}`, { token: h.adminToken, body: { require_pop: true } });
      expect(patched.statusCode, patched.body).toBe(200);
      expect(patched.json()).toMatchObject({ require_pop: true });
      expect((await h.request('GET', `/v1/tenants/${B}`, { token: h.adminToken })).json()).toMatchObject({ require_pop: true });
      const [updated] = (await h.ledgerLines({ limit: 100_000 })).filter((e) => e.event_type === 'TENANT_UPDATED' && e.tenant_id === B);
      expect(updated).toMatchObject({ data: { changes: { require_pop: { from: false, to: true } } } });

      // Issuing a token without proof of possession conflicts with the tenant's setting.
      const before = await snapshotState(h);
      const refusedIssue = expectProblem(
        await h.request('POST', `/v1/tenants/${B}/tokens`, {
          token: h.adminToken,
          body: { subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:read', expires_in_seconds: 60 },
        }),
        409,
      );
      expect(refusedIssue.detail).toMatch(/requires proof of possession/);
      expect(await snapshotState(h)).toEqual(before);
      expect((await issue(B, 'tenant:read', true)).status).toBe(201);

      // A token issued before is refused unless its holder signs.
      const detail = await expectRefused('signature_missing', () => send('GET', `/v1/tenants/${B}`, bearer.token, {}));
      expect(detail).toMatch(/tenant bravo requires proof of possession \(require_pop\)/);
      expect((await h.request('GET', `/v1/tenants/${B}`, { token: bearer.token, signWith: bearer.keys.privateKey })).statusCode).toBe(200);

      // Turned off again, bearer tokens work unsigned.
      expect((await h.request('PATCH', `/v1/tenants/${B}`, { token: h.adminToken, body: { require_pop: false } })).statusCode).toBe(200);
      expect((await send('GET', `/v1/tenants/${B}`, bearer.token, {})).statusCode).toBe(200);
    });

    it('leaves other tenants alone', async () => {
      const res = await h.request('GET', `/v1/tenants/${A}`, { token: h.adminToken });
      expect(res.json()).toMatchObject({ require_pop: false });
    });
  });
});
