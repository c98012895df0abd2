/**
 * The security suite for capability tokens (SPEC §5): one table of named attacks, each built from
 * real tokens issued through the API and blocks signed with real keys (a widened block really is
 * signed by its parent's holder, a spliced block really is valid in its own token), and each sent to
 * the real app as a request that would create a VM. Every attack must be refused with 401 and the
 * problem code naming why, and must change nothing: no tenant, token, VM or ledger entry.
 *
 * Where a case has a control, the same request without the attack is admitted first (201), so the
 * refusal is proven to be the attack's and not a setup mistake. The replay of a nonce to another
 * replica needs two servers on one database: test/replicas/proof-of-possession.test.ts.
 */
import { sign, type KeyObject } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeIdSource, type ManualClock } from '../../src/clock.js';
import { loadKeyEncryptionKey } from '../../src/config/data-dir.js';
import { retirePlatformKey, rotatePlatformKey } from '../../src/control/platform-keys.js';
import { RevocationList } from '../../src/control/revocations.js';
import { issueToken, revokeToken } from '../../src/control/tokens.js';
import { PpnError } from '../../src/errors.js';
import { LOCAL_OPERATOR } from '../../src/ledger/entry.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { contentDigest } from '../../src/httpsig/digest.js';
import { signMessage, signRequest } from '../../src/httpsig/sign.js';
import { delegatedBlockId, delegateSigningInput, MAX_BLOCKS, MAX_TOKEN_BYTES, parseToken } from '../../src/tokens/format.js';
import { verifyToken } from '../../src/tokens/verify.js';
import { generateKeyPair, keyId, type KeyPair } from '../../src/tokens/keys.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { signDelegated, signRoot, tokenOf, type RawClaims, type SignedBlock } from '../tokens/hand-made.js';
import { expectProblem, snapshotState } from './expectations.js';

const A = 'attacked';
const B = 'bystander';

interface Refusal {
  status: 401 | 403;
  code: string;
  token_error?: string;
  signature_error?: string;
  detail?: RegExp;
}

interface Prepared {
  /** The same request without the attack: must be admitted, before the attack is tried. */
  control?: () => Promise<LightMyRequestResponse>;
  attack: () => Promise<LightMyRequestResponse>;
}

interface Attack {
  name: string;
  /** Sets the attack up (issuing tokens, revoking, rotating keys: all before the state is snapshot). */
  prepare: () => Promise<Prepared>;
  refusal: Refusal;
}

let h: Harness;
let clock: ManualClock;
let vmNumber = 0;

function nowSeconds(): number {
  return Math.floor(clock.now() / 1000);
}

/** A root token demanding proof of possession, issued through the API to `holder`. */
async function issueRoot(tenantId: string, holder: KeyPair, extra: Record<string, unknown> = {}): Promise<{ token: string; tokenId: string }> {
  const res = await h.request('POST', `/v1/tenants/${tenantId}/tokens`, {
    token: h.adminToken,
    body: { subject_pubkey: publicKeyText(holder), scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true, ...extra },
  });
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json<{ token: string; token_id: string }>();
  return { token: body.token, tokenId: body.token_id };
}

function blocksOf(token: string): SignedBlock[] {
  return parseToken(token).map(({ payload, signature }) => ({ payload, signature }));
}

/** Valid delegated claims for `holder`: tenant:input for ten minutes (inside every root here). */
function childClaims(holder: KeyPair, overrides: RawClaims = {}): RawClaims {
  return { sub: publicKeyText(holder), scp: ['tenant:input'], iat: nowSeconds(), exp: nowSeconds() + 600, ...overrides };
}

/** `blocks` with one more block for `holder`, signed by `signer` (the parent's holder, unless forged). */
function extend(blocks: SignedBlock[], holder: KeyPair, signer: KeyObject, overrides: RawClaims = {}): SignedBlock[] {
  return [...blocks, signDelegated(blocks.at(-1)!, childClaims(holder, overrides), signer)];
}

function vmBody(): string {
  return JSON.stringify({ name: `attack-vm-${++vmNumber}`, disk_gb: 1 });
}

/** A fresh holder key and a pop root issued to it for tenant A. */
async function freshHolder(): Promise<{ alice: KeyPair; token: string }> {
  const alice = generateKeyPair();
  return { alice, token: (await issueRoot(A, alice)).token };
}

/**
 * A VM create signed by hand rather than as `ppn` signs: these `components`, this `keyid`, by
 * `signer`, with the body's Content-Digest sent whether covered or not.
 */
function signCreateByHand(keyid: string, signer: KeyObject, components: readonly string[]): { headers: Record<string, string>; body: string } {
  const body = vmBody();
  const headers = { 'content-digest': contentDigest(Buffer.from(body)) };
  const request = { method: 'POST', path: '/v1/vms', query: '', headers, body: Buffer.from(body) };
  const params = { created: nowSeconds(), nonce: `by-hand-${vmNumber}`, keyid, alg: 'ed25519' };
  return { headers: { ...headers, ...signMessage(request, { label: 'sig1', components, params, privateKey: signer }) }, body };
}

/** Revokes a token or block of tenant A by id, as the platform admin. */
async function revokeAsAdmin(tokenId: string): Promise<void> {
  const res = await h.request('DELETE', `/v1/tenants/${A}/tokens/${tokenId}`, { token: h.adminToken });
  expect(res.statusCode, res.body).toBe(200);
}

/** POST /v1/vms under `token`, signed as `ppn` signs by `signer` when given. */
function createVm(token: string, signer?: KeyObject): Promise<LightMyRequestResponse> {
  return h.request('POST', '/v1/vms', { token, payload: vmBody(), headers: { 'content-type': 'application/json' }, ...(signer ? { signWith: signer } : {}) });
}

/** The signature fields `ppn` would send for this request, by `signer`, at the server's time now. */
function fieldsFor(method: string, url: string, body: string | undefined, signer: KeyObject): Record<string, string> {
  return signRequest({ method, ...splitTarget(url), body: body === undefined ? undefined : Buffer.from(body) }, { privateKey: signer, clock });
}

/** Sends exactly these header fields beside the token: no signing of its own. */
function sendRaw(method: string, url: string, token: string, fields: Record<string, string>, body?: string): Promise<LightMyRequestResponse> {
  return h.request(method, url, {
    token,
    headers: { ...fields, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { payload: body } : {}),
  });
}

const tokenRefusal = (tokenError: string, detail?: RegExp): Refusal => ({ status: 401, code: 'unauthenticated', token_error: tokenError, ...(detail ? { detail } : {}) });
const proofRefusal = (signatureError: string): Refusal => ({ status: 401, code: 'unauthenticated', signature_error: signatureError });
const REVOKED: Refusal = { status: 401, code: 'unauthenticated', detail: /^token has been revoked$/ };

const CHAIN_ATTACKS: Attack[] = [
  {
    name: 'a forged root: the real root claims under the real kid, signed by another key',
    async prepare() {
      const { alice, token } = await freshHolder();
      const claims = JSON.parse(parseToken(token)[0]!.payload.toString('utf8')) as RawClaims;
      const forged = tokenOf(signRoot(claims, generateKeyPair().privateKey));
      return { control: () => createVm(token, alice.privateKey), attack: () => createVm(forged, alice.privateKey) };
    },
    refusal: tokenRefusal('bad_signature', /block 0/),
  },
  {
    name: 'a forged root under a kid the platform never had',
    async prepare() {
      const { alice, token } = await freshHolder();
      const stranger = generateKeyPair();
      const claims = JSON.parse(parseToken(token)[0]!.payload.toString('utf8')) as RawClaims;
      const forged = tokenOf(signRoot({ ...claims, kid: keyId(stranger.publicKey) }, stranger.privateKey));
      return { attack: () => createVm(forged, alice.privateKey) };
    },
    refusal: tokenRefusal('unknown_key'),
  },
  {
    name: "a forged delegated signature: the delegate signs its own block instead of its parent's holder",
    async prepare() {
      const [alice, mallory] = [generateKeyPair(), generateKeyPair()];
      const root = blocksOf((await issueRoot(A, alice)).token);
      const honest = tokenOf(...extend(root, mallory, alice.privateKey));
      const forged = tokenOf(...extend(root, mallory, mallory.privateKey));
      return { control: () => createVm(honest, mallory.privateKey), attack: () => createVm(forged, mallory.privateKey) };
    },
    refusal: tokenRefusal('bad_signature', /block 1/),
  },
  {
    name: "a block spliced from another token: alice's delegation in one tenant moved onto her root in another",
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const rootA = blocksOf((await issueRoot(A, alice)).token);
      const rootB = blocksOf((await issueRoot(B, alice)).token);
      const [, delegation] = extend(rootA, bob, alice.privateKey);
      return {
        control: () => createVm(tokenOf(...rootA, delegation!), bob.privateKey),
        attack: () => createVm(tokenOf(...rootB, delegation!), bob.privateKey),
      };
    },
    refusal: tokenRefusal('bad_signature', /block 1/),
  },
  {
    name: 'a widened scope: tenant:input claimed below a tenant:user block, signed by its holder',
    async prepare() {
      const [alice, bob, carol] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
      const root = blocksOf((await issueRoot(A, alice)).token);
      const honest = extend(extend(root, bob, alice.privateKey), carol, bob.privateKey);
      const widened = extend(extend(root, bob, alice.privateKey, { scp: ['tenant:user'] }), carol, bob.privateKey, { scp: ['tenant:input'] });
      return { control: () => createVm(tokenOf(...honest), carol.privateKey), attack: () => createVm(tokenOf(...widened), carol.privateKey) };
    },
    refusal: tokenRefusal('widened', /scopes/),
  },
  {
    name: "a later expiry than the parent's, signed by the parent's holder",
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const { token } = await issueRoot(A, alice);
      const rootExp = parseToken(token)[0]!.claims.exp;
      const root = blocksOf(token);
      return {
        control: () => createVm(tokenOf(...extend(root, bob, alice.privateKey, { exp: rootExp })), bob.privateKey),
        attack: () => createVm(tokenOf(...extend(root, bob, alice.privateKey, { exp: rootExp + 1 })), bob.privateKey),
      };
    },
    refusal: tokenRefusal('widened', /expiry/),
  },
  {
    name: "larger limits than the parent's, signed by the parent's holder",
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const root = blocksOf((await issueRoot(A, alice, { limits: { max_vms: 50 } })).token);
      return {
        control: () => createVm(tokenOf(...extend(root, bob, alice.privateKey, { lim: { max_vms: 50 } })), bob.privateKey),
        attack: () => createVm(tokenOf(...extend(root, bob, alice.privateKey, { lim: { max_vms: 51 } })), bob.privateKey),
      };
    },
    refusal: tokenRefusal('widened', /limits/),
  },
  {
    name: "limits dropped below a limited parent (no lim at all), signed by the parent's holder",
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const root = blocksOf((await issueRoot(A, alice, { limits: { max_vms: 50 } })).token);
      return { attack: () => createVm(tokenOf(...extend(root, bob, alice.privateKey)), bob.privateKey) };
    },
    refusal: tokenRefusal('widened', /limits/),
  },
  {
    name: 'pop switched off below a pop block, then used as a bearer token',
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const token = tokenOf(...extend(blocksOf((await issueRoot(A, alice)).token), bob, alice.privateKey, { pop: false }));
      return { control: () => createVm(token, bob.privateKey), attack: () => createVm(token) };
    },
    refusal: proofRefusal('signature_missing'),
  },
  {
    name: 'a delegated block naming another tenant',
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const root = blocksOf((await issueRoot(A, alice)).token);
      return {
        control: () => createVm(tokenOf(...extend(root, bob, alice.privateKey)), bob.privateKey),
        attack: () => createVm(tokenOf(...extend(root, bob, alice.privateKey, { tid: B })), bob.privateKey),
      };
    },
    refusal: tokenRefusal('malformed', /only block 0 may carry kid, tid or jti/),
  },
  {
    name: 'a delegation below a revoked issued ancestor',
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const root = await issueRoot(A, alice);
      const token = tokenOf(...extend(blocksOf(root.token), bob, alice.privateKey));
      expect((await createVm(token, bob.privateKey)).statusCode).toBe(201);
      await revokeAsAdmin(root.tokenId);
      return { attack: () => createVm(token, bob.privateKey) };
    },
    refusal: REVOKED,
  },
  {
    name: 'a delegation below a revoked offline ancestor (revoked by its block id)',
    async prepare() {
      const [alice, bob, carol] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
      const middle = extend(blocksOf((await issueRoot(A, alice)).token), bob, alice.privateKey);
      const token = tokenOf(...extend(middle, carol, bob.privateKey));
      expect((await createVm(token, carol.privateKey)).statusCode).toBe(201);
      await revokeAsAdmin(delegatedBlockId(middle[1]!.signature));
      return { attack: () => createVm(token, carol.privateKey) };
    },
    refusal: REVOKED,
  },
  {
    name: 'a token issued through the API by a delegated block, after an ancestor of that block is revoked',
    async prepare() {
      const [alice, bob, carol] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
      const root = await issueRoot(A, alice, { scope: 'service:tenant-admin' });
      const bobToken = tokenOf(...extend(blocksOf(root.token), bob, alice.privateKey, { scp: ['service:tenant-admin'] }));
      // Bob, holding a delegated admin block, issues carol a root of her own through the API.
      const issued = await h.request('POST', `/v1/tenants/${A}/tokens`, {
        token: bobToken,
        signWith: bob.privateKey,
        body: { subject_pubkey: publicKeyText(carol), scope: 'tenant:input', expires_in_seconds: 300 },
      });
      expect(issued.statusCode, issued.body).toBe(201);
      // Issued under a pop chain, carol's token demands proof of possession too.
      const carolToken = issued.json<{ token: string }>().token;
      expect((await createVm(carolToken, carol.privateKey)).statusCode).toBe(201);
      await revokeAsAdmin(root.tokenId);
      return { attack: () => createVm(carolToken, carol.privateKey) };
    },
    refusal: REVOKED,
  },
  {
    name: `a ${MAX_BLOCKS + 1}-block chain, every block narrowing and correctly signed`,
    async prepare() {
      const holders = Array.from({ length: MAX_BLOCKS + 1 }, () => generateKeyPair());
      let blocks = blocksOf((await issueRoot(A, holders[0]!)).token);
      for (let i = 1; i <= MAX_BLOCKS; i++) blocks = extend(blocks, holders[i]!, holders[i - 1]!.privateKey);
      const tooLong = tokenOf(...blocks);
      // Under the size bound, so that the count is what is refused.
      expect(Buffer.byteLength(tooLong)).toBeLessThanOrEqual(MAX_TOKEN_BYTES);
      return {
        control: () => createVm(tokenOf(...blocks.slice(0, MAX_BLOCKS)), holders[MAX_BLOCKS - 1]!.privateKey),
        attack: () => createVm(tooLong, holders[MAX_BLOCKS]!.privateKey),
      };
    },
    refusal: tokenRefusal('too_many_blocks'),
  },
  {
    name: 'a 5 KiB token: a correctly signed delegated block padded with JSON whitespace',
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const root = blocksOf((await issueRoot(A, alice)).token);
      const claims = JSON.stringify(childClaims(bob));
      const padded = Buffer.from(`{${' '.repeat(3500)}${claims.slice(1)}`);
      const block = { payload: padded, signature: sign(null, delegateSigningInput(root[0]!.signature, padded), alice.privateKey) };
      const large = tokenOf(...root, block);
      expect(Buffer.byteLength(large)).toBeGreaterThanOrEqual(5 * 1024);
      return {
        control: () => createVm(tokenOf(...extend(root, bob, alice.privateKey)), bob.privateKey),
        attack: () => createVm(large, bob.privateKey),
      };
    },
    refusal: tokenRefusal('too_large'),
  },
  {
    // Last among the token cases: it rotates the platform key twice (to a key of its own first, so
    // the key that signed the other cases' tokens stays in the ring).
    name: 'a token of a retired platform key, used while valid (so cached) and then after retirement',
    async prepare() {
      const deps = { store: h.store, clock, ids: makeIdSource(clock) };
      const kek = loadKeyEncryptionKey(h.dataDir);
      const { kid } = await rotatePlatformKey(deps, kek);
      await h.keyring.refresh();
      const { alice, token } = await freshHolder();
      expect(parseToken(token)[0]!.claims.kid).toBe(kid);
      expect((await createVm(token, alice.privateKey)).statusCode).toBe(201);
      await rotatePlatformKey(deps, kek);
      await retirePlatformKey(deps, kid);
      await h.keyring.refresh();
      return { attack: () => createVm(token, alice.privateKey) };
    },
    refusal: tokenRefusal('unknown_key', /unknown or retired/),
  },
];

const PROOF_ATTACKS: Attack[] = [
  {
    name: 'no signature under a pop token',
    async prepare() {
      const { alice, token } = await freshHolder();
      return { control: () => createVm(token, alice.privateKey), attack: () => createVm(token) };
    },
    refusal: proofRefusal('signature_missing'),
  },
  {
    name: 'a signature created 61 s before the server receives it',
    async prepare() {
      const { alice, token } = await freshHolder();
      const body = vmBody();
      const fields = fieldsFor('POST', '/v1/vms', body, alice.privateKey);
      return {
        attack: () => {
          clock.advance(61_000);
          return sendRaw('POST', '/v1/vms', token, fields, body);
        },
      };
    },
    refusal: proofRefusal('signature_expired'),
  },
  {
    name: 'a nonce replayed to the same server (the first use created a VM)',
    async prepare() {
      const { alice, token } = await freshHolder();
      const body = vmBody();
      const fields = fieldsFor('POST', '/v1/vms', body, alice.privateKey);
      return { control: () => sendRaw('POST', '/v1/vms', token, fields, body), attack: () => sendRaw('POST', '/v1/vms', token, fields, body) };
    },
    refusal: proofRefusal('nonce_reused'),
  },
  {
    name: 'another body than the one signed',
    async prepare() {
      const { alice, token } = await freshHolder();
      const fields = fieldsFor('POST', '/v1/vms', vmBody(), alice.privateKey);
      return { attack: () => sendRaw('POST', '/v1/vms', token, fields, vmBody()) };
    },
    refusal: proofRefusal('digest_mismatch'),
  },
  {
    name: 'another body with a Content-Digest of its own, under the signature for the first',
    async prepare() {
      const { alice, token } = await freshHolder();
      const other = vmBody();
      const fields = { ...fieldsFor('POST', '/v1/vms', vmBody(), alice.privateKey), 'content-digest': contentDigest(Buffer.from(other)) };
      return { attack: () => sendRaw('POST', '/v1/vms', token, fields, other) };
    },
    refusal: proofRefusal('signature_invalid'),
  },
  {
    name: 'a signature for another path, sent to POST /v1/vms',
    async prepare() {
      const { alice, token } = await freshHolder();
      const body = vmBody();
      const fields = fieldsFor('POST', `/v1/tenants/${A}/tokens`, body, alice.privateKey);
      return { attack: () => sendRaw('POST', '/v1/vms', token, fields, body) };
    },
    refusal: proofRefusal('signature_invalid'),
  },
  {
    name: 'a signature for another query, sent without it',
    async prepare() {
      const { alice, token } = await freshHolder();
      const body = vmBody();
      const fields = fieldsFor('POST', `/v1/vms?tenant_id=${A}`, body, alice.privateKey);
      return { control: () => sendRaw('POST', `/v1/vms?tenant_id=${A}`, token, fields, body), attack: () => sendRaw('POST', '/v1/vms', token, { ...fields }, body) };
    },
    // The control spent the nonce, but the query is checked first: the signature no longer verifies.
    refusal: proofRefusal('signature_invalid'),
  },
  {
    name: "a delegated token signed by the root's holder instead of the final holder",
    async prepare() {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const token = tokenOf(...extend(blocksOf((await issueRoot(A, alice)).token), bob, alice.privateKey));
      return { control: () => createVm(token, bob.privateKey), attack: () => createVm(token, alice.privateKey) };
    },
    refusal: proofRefusal('wrong_key'),
  },
  {
    name: "a signature by a stranger's key that claims the final holder's keyid",
    async prepare() {
      const { alice, token } = await freshHolder();
      const { headers, body } = signCreateByHand(publicKeyText(alice), generateKeyPair().privateKey, ['@method', '@path', '@query', 'content-digest']);
      return { attack: () => sendRaw('POST', '/v1/vms', token, headers, body) };
    },
    refusal: proofRefusal('signature_invalid'),
  },
  ...(
    [
      ['@query', ['@method', '@path', 'content-digest']],
      ['@path', ['@method', '@query', 'content-digest']],
      ['@method', ['@path', '@query', 'content-digest']],
      ['content-digest', ['@method', '@path', '@query']],
    ] as const
  ).map(([left, components]): Attack => ({
    name: `a Signature-Input that leaves out ${left}`,
    async prepare() {
      const { alice, token } = await freshHolder();
      const { headers, body } = signCreateByHand(publicKeyText(alice), alice.privateKey, components);
      return { attack: () => sendRaw('POST', '/v1/vms', token, headers, body) };
    },
    refusal: proofRefusal('components_missing'),
  })),
];

describe('attacks on capability tokens are refused and change nothing', () => {
  beforeAll(async () => {
    h = await startHarness();
    clock = h.clock as ManualClock;
    await h.createTenant(A, { max_vms: 100, storage_quota_gb: 1000 });
    await h.createTenant(B, { max_vms: 100, storage_quota_gb: 1000 });
  });
  afterAll(async () => {
    await h.close();
  });

  async function expectRefused({ prepare, refusal }: Attack): Promise<void> {
    const { control, attack } = await prepare();
    if (control) {
      const admitted = await control();
      expect(admitted.statusCode, `the control (the request without the attack): ${admitted.body}`).toBe(201);
    }
    const before = await snapshotState(h);
    const problem = expectProblem(await attack(), refusal.status);
    expect(problem.code).toBe(refusal.code);
    expect(problem.token_error).toBe(refusal.token_error);
    expect(problem.signature_error).toBe(refusal.signature_error);
    if (refusal.detail) expect(problem.detail).toMatch(refusal.detail);
    expect(await snapshotState(h)).toEqual(before);
  }

  describe('the chain', () => {
    it.each(CHAIN_ATTACKS)('$name → $refusal.status', expectRefused);
  });

  describe('proof of possession', () => {
    it.each(PROOF_ATTACKS)('$name → $refusal.status', expectRefused);
  });

  describe('issuing through the API under a chain revoked on another replica', () => {
    it('is refused inside the tenant lock, though this server has not yet heard of the revocation', async () => {
      const [alice, bob] = [generateKeyPair(), generateKeyPair()];
      const root = await issueRoot(A, alice, { scope: 'service:tenant-admin' });
      const bobToken = tokenOf(...extend(blocksOf(root.token), bob, alice.privateKey, { scp: ['service:tenant-admin'] }));
      const chain = verifyToken(bobToken, { platformKey: (kid) => h.keyring.publicKey(kid), now: clock.now() }).chain;
      const deps = { store: h.store, clock, ids: makeIdSource(clock) };
      const origin = { actor: LOCAL_OPERATOR, requestId: null };
      // Another replica's revocation: committed to the store, unknown to this server's list.
      await revokeToken(deps, new RevocationList(), origin, A, root.tokenId);
      const before = await snapshotState(h);
      const attempt = issueToken(deps, h.keyring, origin, {
        tenantId: A,
        subjectPubkey: publicKeyText(generateKeyPair()),
        scopes: ['tenant:input'],
        expiresInSeconds: 300,
        limits: null,
        issuerChain: chain,
        proofOfPossession: false,
        issuedBy: chain.at(-1)!.jti,
      });
      await expect(attempt).rejects.toThrow(PpnError);
      await expect(attempt).rejects.toMatchObject({ code: 'unauthenticated', message: 'token has been revoked' });
      expect(await snapshotState(h)).toEqual(before);
    });
  });
});
