/**
 * The product's proof-of-possession profile of RFC 9421 (SPEC §5), one case per way a request can
 * fail, each asserting its stable code. Requests are signed for real with Ed25519 keys, so each case
 * differs from a valid request only in the part under test. Time comes from a ManualClock.
 */
import { generateKeyPairSync, pbkdf2, type KeyObject } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { type RequestParts } from '../../src/httpsig/base.js';
import { contentDigest } from '../../src/httpsig/digest.js';
import type { SignatureErrorCode } from '../../src/httpsig/error.js';
import { MAX_SIGNATURE_FIELD_BYTES } from '../../src/httpsig/fields.js';
import { keyIdOf, signMessage, signRequest } from '../../src/httpsig/sign.js';
import {
  concludeExamination,
  examineRequestSignature,
  verifyRequestSignature,
  type AcceptNonce,
  type ProofOptions,
  type VerifiedProof,
} from '../../src/httpsig/verify.js';
import { encodeBase64url, rawPublicKey } from '../../src/tokens/keys.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');
const CREATED = T0 / 1000;
const holder = generateKeyPairSync('ed25519');
const stranger = generateKeyPairSync('ed25519');
const holderKey = encodeBase64url(rawPublicKey(holder.publicKey));
const strangerKey = encodeBase64url(rawPublicKey(stranger.publicKey));
const BODY = Buffer.from('{"name":"web-1","vcpus":2}');

/** An in-process nonce record, as the SQLite server will keep it. */
function nonceRecord(clock: ManualClock): AcceptNonce {
  const seen = new Map<string, number>();
  return async (keyid, nonce, expiresAt) => {
    for (const [key, until] of seen) if (until <= clock.now()) seen.delete(key);
    const key = `${keyid} ${nonce}`;
    if (seen.has(key)) return false;
    seen.set(key, expiresAt);
    return true;
  };
}

const post = (headers: Record<string, string> = {}): RequestParts => ({
  method: 'POST',
  path: '/v1/vms',
  query: 'tenant_id=acme',
  headers: { host: '127.0.0.1:9221', 'content-type': 'application/json', ...headers },
  body: BODY,
});

interface Custom {
  label?: string;
  components?: string[];
  params?: Record<string, string | number>;
  key?: KeyObject;
  extra?: Record<string, string>;
}

/** A POST with a body, signed with chosen components and parameters (defaults: the full profile). */
function customSigned(custom: Custom = {}): RequestParts {
  const request = post({ 'content-digest': contentDigest(BODY), ...custom.extra });
  const fields = signMessage(request, {
    label: custom.label ?? 'sig1',
    components: custom.components ?? ['@method', '@path', '@query', 'content-digest'],
    params: custom.params ?? { created: CREATED, nonce: 'nonce-1', keyid: holderKey, alg: 'ed25519' },
    privateKey: custom.key ?? holder.privateKey,
  });
  return { ...request, headers: { ...request.headers, ...fields } };
}

function withHeaders(request: RequestParts, headers: Record<string, string | undefined>): RequestParts {
  const merged: Record<string, string | string[] | undefined> = { ...request.headers, ...headers };
  for (const name of Object.keys(merged)) if (merged[name] === undefined) delete merged[name];
  return { ...request, headers: merged };
}

type Verifier = (request: RequestParts, options: ProofOptions) => Promise<VerifiedProof>;

/**
 * Every case runs through verifyRequestSignature and through its two halves as the agent listener
 * uses them: examined without the token (in the listener's worker), the examination cloned as
 * `postMessage` clones it, then concluded with the holder's key. The outcomes must be the same.
 */
const VERIFIERS: [string, Verifier][] = [
  ['verifyRequestSignature', verifyRequestSignature],
  [
    'examineRequestSignature, a structured clone, then concludeExamination',
    async (request, { holderKey, clock, acceptNonce }) => concludeExamination(structuredClone(await examineRequestSignature(request, clock)), holderKey, acceptNonce),
  ],
];

let clock: ManualClock;
let acceptNonce: AcceptNonce;
let verifier: Verifier;
const check = (request: RequestParts) => verifier(request, { holderKey, clock, acceptNonce });
const refused = (request: RequestParts, code: SignatureErrorCode) => expect(check(request)).rejects.toMatchObject({ name: 'SignatureError', code });

beforeEach(() => {
  clock = new ManualClock(T0);
  acceptNonce = nonceRecord(clock);
});

describe.each(VERIFIERS)('through %s', (_name, verify) => {
  beforeEach(() => {
    verifier = verify;
  });

  describe('a request signed by the final holder', () => {
    it('verifies, with a body and with none', async () => {
      await expect(check(customSigned())).resolves.toMatchObject({ label: 'sig1', keyid: holderKey, nonce: 'nonce-1', created: CREATED });
      const get: RequestParts = { method: 'GET', path: '/v1/whoami', query: '', headers: { host: 'x' } };
      const signed = { ...get, headers: { ...get.headers, ...signRequest(get, { privateKey: holder.privateKey, clock }) } };
      await expect(check(signed)).resolves.toMatchObject({ components: ['@method', '@path', '@query'] });
    });

    it("verifies the Ed25519 signature on libuv's thread pool: the event loop goes on meanwhile", async () => {
      // Jobs that keep every thread of the pool busy for a while: the signature check queues behind them.
      const busyPool = Array.from({ length: 16 }, () => new Promise((resolve) => pbkdf2('busy', 'salt', 100_000, 32, 'sha256', resolve)));
      let verified = false;
      const verifying = check(customSigned()).then(() => (verified = true));
      // A whole turn of the event loop (timers, I/O, immediates) runs before the check can finish.
      await new Promise((resolve) => setImmediate(resolve));
      expect(verified).toBe(false);
      await Promise.all(busyPool);
      await verifying;
      expect(verified).toBe(true);
    });

    it('signs the same with a keyid derived once (keyIdOf) as with the keyid derived per request', async () => {
      const request = post();
      const once = keyIdOf(holder.privateKey);
      expect(once).toBe(holderKey);
      const perRequest = signRequest(request, { privateKey: holder.privateKey, clock, nonce: () => 'nonce-k' });
      const derivedOnce = signRequest(request, { privateKey: holder.privateKey, keyid: once, clock, nonce: () => 'nonce-k' });
      expect(derivedOnce).toEqual(perRequest);
      await expect(check({ ...request, headers: { ...request.headers, ...derivedOnce } })).resolves.toMatchObject({ keyid: holderKey });
    });

    it('verifies with any label, covering more than required (@authority, content-type) and with tag and expires', async () => {
      const request = customSigned({
        label: 'my-client',
        components: ['@method', '@authority', '@path', '@query', 'content-type', 'content-digest'],
        params: { created: CREATED, expires: CREATED + 30, nonce: 'n', keyid: holderKey, tag: 'cli' },
      });
      await expect(check(request)).resolves.toMatchObject({ label: 'my-client' });
    });

    it('verifies when created is 60 s old or 60 s ahead, the edges of the window', async () => {
      clock.advance(60_000);
      await expect(check(customSigned())).resolves.toBeDefined();
      clock.advance(-120_000);
      await expect(check(customSigned({ params: { created: CREATED, nonce: 'other', keyid: holderKey } }))).resolves.toBeDefined();
    });
  });

  describe('the proof-of-possession security suite', () => {
    it('refuses a request without a signature: signature_missing', async () => {
      await refused(post(), 'signature_missing');
      await refused(withHeaders(customSigned(), { signature: undefined }), 'signature_missing');
      await refused(withHeaders(customSigned(), { 'signature-input': undefined }), 'signature_missing');
    });

    it('refuses a signature created 61 s ago: signature_expired', async () => {
      clock.advance(61_000);
      await refused(customSigned(), 'signature_expired');
    });

    it('refuses a replayed nonce: nonce_reused', async () => {
      const request = customSigned();
      await check(request);
      await refused(request, 'nonce_reused');
      clock.advance(30_000);
      await refused(customSigned({ params: { created: CREATED + 30, nonce: 'nonce-1', keyid: holderKey } }), 'nonce_reused');
    });

    it('refuses a body other than the one signed: digest_mismatch', async () => {
      await refused({ ...customSigned(), body: Buffer.from('{"name":"web-1","vcpus":64}') }, 'digest_mismatch');
    });

    it('refuses a body whose Content-Digest was changed to match it: signature_invalid', async () => {
      const body = Buffer.from('{"name":"web-1","vcpus":64}');
      await refused({ ...withHeaders(customSigned(), { 'content-digest': contentDigest(body) }), body }, 'signature_invalid');
    });

    it('refuses another path, query or method: signature_invalid', async () => {
      await refused({ ...customSigned(), path: '/v1/tenants' }, 'signature_invalid');
      await refused({ ...customSigned(), query: 'tenant_id=globex' }, 'signature_invalid');
      await refused({ ...customSigned(), query: '' }, 'signature_invalid');
      await refused({ ...customSigned(), method: 'PUT' }, 'signature_invalid');
    });

    it("refuses a signature by a key other than the final holder's: wrong_key, or signature_invalid when keyid lies", async () => {
      await refused(customSigned({ key: stranger.privateKey, params: { created: CREATED, nonce: 'n', keyid: strangerKey } }), 'wrong_key');
      await refused(customSigned({ key: stranger.privateKey }), 'signature_invalid');
    });

    it('answers wrong_key before the digest and the signature are looked at', async () => {
      const byStranger = customSigned({ key: stranger.privateKey, params: { created: CREATED, nonce: 'n', keyid: strangerKey } });
      await refused({ ...byStranger, body: Buffer.from('{"other":true}') }, 'wrong_key');
      await refused(withHeaders(byStranger, { 'content-digest': undefined }), 'wrong_key');
      await refused({ ...byStranger, path: '/v1/tenants' }, 'wrong_key');
    });

    it('refuses a Signature-Input that covers too little: components_missing', async () => {
      await refused(customSigned({ components: ['@method', '@path', 'content-digest'] }), 'components_missing');
      await refused(customSigned({ components: ['@path', '@query', 'content-digest'] }), 'components_missing');
      await refused(customSigned({ components: ['@method', '@query', 'content-digest'] }), 'components_missing');
      await refused(customSigned({ components: ['@method', '@path', '@query'] }), 'components_missing');
    });

    it('does not use up a nonce for a request that fails', async () => {
      await refused({ ...customSigned(), path: '/v1/tenants' }, 'signature_invalid');
      await expect(check(customSigned())).resolves.toBeDefined();
    });

    it('accepts a nonce again once its window has passed on the record', async () => {
      await check(customSigned());
      clock.advance(61_000);
      // Same nonce, newly created: the record let it go when the old signature could no longer verify.
      await expect(check(customSigned({ params: { created: CREATED + 61, nonce: 'nonce-1', keyid: holderKey } }))).resolves.toBeDefined();
    });
  });

  describe('malformed Signature-Input parameters', () => {
    const params = (overrides: Record<string, string | number | undefined>) => {
      const all: Record<string, string | number | undefined> = { created: CREATED, nonce: 'n', keyid: holderKey, ...overrides };
      return Object.fromEntries(Object.entries(all).filter(([, value]) => value !== undefined)) as Record<string, string | number>;
    };
    const cases: [string, Record<string, string | number | undefined>, SignatureErrorCode][] = [
      ['created missing', { created: undefined }, 'signature_malformed'],
      ['created a string', { created: String(CREATED) }, 'signature_malformed'],
      ['created a decimal', { created: CREATED + 0.5 }, 'signature_malformed'],
      ['created negative', { created: -1 }, 'signature_malformed'],
      ['created 61 s in the future', { created: CREATED + 61 }, 'signature_not_yet_valid'],
      ['expires passed', { expires: CREATED }, 'signature_expired'],
      ['expires a string', { expires: 'soon' }, 'signature_malformed'],
      ['keyid missing', { keyid: undefined }, 'signature_malformed'],
      ['keyid in hex', { keyid: rawPublicKey(holder.publicKey).toString('hex') }, 'signature_malformed'],
      ['keyid in standard base64', { keyid: rawPublicKey(holder.publicKey).toString('base64') }, 'signature_malformed'],
      ['keyid a name', { keyid: 'test-key-ed25519' }, 'signature_malformed'],
      ['keyid an integer', { keyid: 7 }, 'signature_malformed'],
      ['alg rsa-pss-sha512', { alg: 'rsa-pss-sha512' }, 'algorithm_unsupported'],
      ['alg hmac-sha256', { alg: 'hmac-sha256' }, 'algorithm_unsupported'],
      ['nonce missing', { nonce: undefined }, 'signature_malformed'],
      ['nonce empty', { nonce: '' }, 'signature_malformed'],
      ['nonce of 129 characters', { nonce: 'n'.repeat(129) }, 'signature_malformed'],
      ['nonce an integer', { nonce: 42 }, 'signature_malformed'],
    ];
    for (const [what, overrides, code] of cases) {
      it(`refuses ${what}: ${code}`, async () => {
        await refused(customSigned({ params: params(overrides) }), code);
      });
    }
  });

  describe('malformed covered components', () => {
    const cases: [string, string, SignatureErrorCode][] = [
      ['a duplicated component', '("@method" "@path" "@query" "@path" "content-digest")', 'signature_malformed'],
      ['an unknown derived component', '("@method" "@path" "@query" "content-digest" "@target-uri")', 'signature_malformed'],
      ['@signature-params itself', '("@method" "@path" "@query" "content-digest" "@signature-params")', 'signature_malformed'],
      ['a component with a parameter', '("@method" "@path" "@query" "content-digest";sf)', 'signature_malformed'],
      ['a component given as a token', '("@method" "@path" @query "content-digest")', 'signature_malformed'],
      ['a field name with upper case', '("@method" "@path" "@query" "Content-Digest")', 'signature_malformed'],
      ['a field the request lacks', '("@method" "@path" "@query" "content-digest" "x-missing")', 'signature_malformed'],
      ['a field named like a property of every object', '("@method" "@path" "@query" "content-digest" "constructor")', 'signature_malformed'],
      ['a field named __proto__', '("@method" "@path" "@query" "content-digest" "__proto__")', 'signature_malformed'],
      ['17 components', `(${Array.from({ length: 17 }, () => '"@method"').join(' ')})`, 'signature_malformed'],
    ];
    for (const [what, list, code] of cases) {
      it(`refuses ${what}: ${code}`, async () => {
        const input = `sig1=${list};created=${CREATED};nonce="n";keyid="${holderKey}"`;
        await refused(withHeaders(customSigned(), { 'signature-input': input }), code);
      });
    }
  });

  describe('malformed Signature and Signature-Input fields', () => {
    const signed = customSigned();
    const signature = signed.headers.signature as string;
    const input = signed.headers['signature-input'] as string;
    const value = signature.slice('sig1='.length);
    const cases: [string, Record<string, string>, SignatureErrorCode][] = [
      ['Signature not a byte sequence', { signature: `sig1="${value.slice(1, -1)}"` }, 'signature_malformed'],
      ['Signature of 63 bytes', { signature: `sig1=:${Buffer.alloc(63).toString('base64')}:` }, 'signature_malformed'],
      ['Signature with bad base64', { signature: 'sig1=:not*base64:' }, 'signature_malformed'],
      ['Signature labelled differently', { signature: `other=${value}` }, 'signature_malformed'],
      ['two labels in Signature', { signature: `${signature}, sig2=${value}` }, 'signature_malformed'],
      ['two labels in Signature-Input', { 'signature-input': `${input}, sig2=${input.slice('sig1='.length)}` }, 'signature_malformed'],
      ['Signature-Input not a dictionary', { 'signature-input': '("@method")' }, 'signature_malformed'],
      ['Signature-Input member not an inner list', { 'signature-input': 'sig1="@method"' }, 'signature_malformed'],
      ['Signature-Input over the size bound', { 'signature-input': `${input};tag="${'t'.repeat(MAX_SIGNATURE_FIELD_BYTES)}"` }, 'signature_malformed'],
      ['Signature over the size bound', { signature: `${signature}, ${'x'.repeat(MAX_SIGNATURE_FIELD_BYTES)}=?1` }, 'signature_malformed'],
    ];
    for (const [what, headers, code] of cases) {
      it(`refuses ${what}: ${code}`, async () => {
        await refused(withHeaders(signed, headers), code);
      });
    }

    it('reads a field sent on several lines as one, so a second label there is refused too', async () => {
      await refused({ ...signed, headers: { ...signed.headers, signature: [signature, `sig2=${value}`] } }, 'signature_malformed');
    });

    it('refuses a Signature-Input that names an unsigned extra parameter: signature_invalid', async () => {
      await refused(withHeaders(signed, { 'signature-input': `${input};tag="added"` }), 'signature_invalid');
    });
  });

  describe('Content-Digest', () => {
    it('refuses a body without Content-Digest: digest_mismatch', async () => {
      const request = customSigned();
      await refused(withHeaders(request, { 'content-digest': undefined }), 'digest_mismatch');
      const unsigned = customSigned({ components: ['@method', '@path', '@query', 'content-type'] });
      await refused(unsigned, 'components_missing');
    });

    it('refuses a digest under another algorithm only: digest_mismatch', async () => {
      const sha512 = 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:';
      await refused(customSigned({ extra: { 'content-digest': sha512 } }), 'digest_mismatch');
    });

    it('refuses a wrong sha-256 value, a non-byte-sequence and a non-dictionary: digest_mismatch', async () => {
      await refused(customSigned({ extra: { 'content-digest': contentDigest(Buffer.from('other')) } }), 'digest_mismatch');
      await refused(customSigned({ extra: { 'content-digest': 'sha-256="abc"' } }), 'digest_mismatch');
      await refused(customSigned({ extra: { 'content-digest': 'sha-256=:abc' } }), 'digest_mismatch');
    });

    it('accepts sha-256 beside other algorithms', async () => {
      const both = `sha-512=:${Buffer.alloc(64).toString('base64')}:, ${contentDigest(BODY)}`;
      await expect(check(customSigned({ extra: { 'content-digest': both } }))).resolves.toBeDefined();
    });

    it('checks a covered Content-Digest even without a body', async () => {
      const request = customSigned();
      await refused({ ...request, body: undefined }, 'digest_mismatch');
    });
  });
});
