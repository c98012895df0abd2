/**
 * Outside vectors and a second implementation for request signing (SPEC §5, RFC 9421):
 * - RFC 9421 Appendix B.2.6 ("Signing a Request Using ed25519") with the B.1.4 test key: the
 *   signature base, the signature value and both fields, byte for byte;
 * - RFC 9530's example digests of the same body;
 * - interoperability with the `http-message-signatures` package (a dev dependency only), signing
 *   with it and verifying here, and the reverse.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { createSigner, createVerifier, httpbis } from 'http-message-signatures';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { signatureBase, type RequestParts } from '../../src/httpsig/base.js';
import { contentDigest } from '../../src/httpsig/digest.js';
import { parseSignatureFields } from '../../src/httpsig/fields.js';
import { signMessage, signRequest } from '../../src/httpsig/sign.js';
import { verifyMessageSignature, verifyRequestSignature } from '../../src/httpsig/verify.js';
import { encodeBase64url, rawPublicKey } from '../../src/tokens/keys.js';

// RFC 9421 Appendix B.1.4, "Example Ed25519 Test Key".
const TEST_KEY_ED25519 = createPrivateKey(`-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
`);
const TEST_KEY_ED25519_PUBLIC = createPublicKey(`-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
`);

// RFC 9421 Appendix B.2: the test request.
//   POST /foo?param=Value&Pet=dog HTTP/1.1
const BODY = Buffer.from('{"hello": "world"}');
const B2_REQUEST: RequestParts = {
  method: 'POST',
  path: '/foo',
  query: 'param=Value&Pet=dog',
  headers: {
    host: 'example.com',
    date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'content-type': 'application/json',
    'content-digest': 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
    'content-length': '18',
  },
  body: BODY,
};

// RFC 9421 Appendix B.2.6.
const B26_BASE = [
  '"date": Tue, 20 Apr 2021 02:07:55 GMT',
  '"@method": POST',
  '"@path": /foo',
  '"@authority": example.com',
  '"content-type": application/json',
  '"content-length": 18',
  '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
].join('\n');
const B26_SIGNATURE_INPUT = 'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"';
const B26_SIGNATURE = 'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:';
const B26_COMPONENTS = ['date', '@method', '@path', '@authority', 'content-type', 'content-length'];

describe('RFC 9421 Appendix B.2.6: signing a request using ed25519', () => {
  const signed: RequestParts = { ...B2_REQUEST, headers: { ...B2_REQUEST.headers, 'signature-input': B26_SIGNATURE_INPUT, signature: B26_SIGNATURE } };

  it('rebuilds the RFC signature base byte for byte from the received fields', () => {
    const fields = parseSignatureFields(signed.headers);
    expect(fields.label).toBe('sig-b26');
    expect(fields.components).toEqual(B26_COMPONENTS);
    expect(signatureBase(signed, fields.components, fields.signatureParams)).toBe(B26_BASE);
  });

  it('verifies the RFC signature with the B.1.4 public key', () => {
    const fields = verifyMessageSignature(signed, TEST_KEY_ED25519_PUBLIC);
    expect(verify(null, Buffer.from(B26_BASE), TEST_KEY_ED25519_PUBLIC, fields.signature)).toBe(true);
  });

  it('refuses the RFC signature under another key', () => {
    const other = generateKeyPairSync('ed25519').publicKey;
    expect(() => verifyMessageSignature(signed, other)).toThrow(expect.objectContaining({ code: 'signature_invalid' }));
  });

  it('is reproduced exactly by the signer (Ed25519 is deterministic)', () => {
    const fields = signMessage(B2_REQUEST, {
      label: 'sig-b26',
      components: B26_COMPONENTS,
      params: { created: 1618884473, keyid: 'test-key-ed25519' },
      privateKey: TEST_KEY_ED25519,
    });
    expect(fields).toEqual({ 'signature-input': B26_SIGNATURE_INPUT, signature: B26_SIGNATURE });
  });

  it('does not meet the product profile, whose keyid is the holder key and not a name', async () => {
    const holderKey = encodeBase64url(rawPublicKey(TEST_KEY_ED25519_PUBLIC));
    const options = { holderKey, clock: new ManualClock(1618884473_000), acceptNonce: async () => true };
    await expect(verifyRequestSignature(signed, options)).rejects.toMatchObject({ code: 'signature_malformed' });
  });
});

describe('RFC 9530 Content-Digest', () => {
  it('gives the sha-256 digest of the RFC example body', () => {
    // RFC 9530 §2 and Appendix B.1: {"hello": "world"}.
    expect(contentDigest(BODY)).toBe('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  });
});

describe('interoperability with the http-message-signatures package', () => {
  const holder = generateKeyPairSync('ed25519');
  const holderKey = encodeBase64url(rawPublicKey(holder.publicKey));
  const now = Date.parse('2026-03-01T12:00:00Z');
  const clock = new ManualClock(now);
  const options = { holderKey, clock, acceptNonce: async () => true };

  it('a request it signs with the product profile verifies here', async () => {
    const body = Buffer.from('{"name":"web-1"}');
    const headers = { host: '127.0.0.1:9221', 'content-type': 'application/json', 'content-digest': contentDigest(body) };
    const signed = await httpbis.signMessage(
      {
        key: createSigner(holder.privateKey, 'ed25519', holderKey),
        name: 'sig1',
        fields: ['@method', '@path', '@query', 'content-digest'],
        params: ['created', 'keyid', 'nonce', 'alg'],
        paramValues: { created: new Date(now), nonce: 'n-0123456789' },
      },
      { method: 'POST', url: 'http://127.0.0.1:9221/v1/vms?tenant_id=acme', headers },
    );
    const lower = Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), value]));
    const proof = await verifyRequestSignature({ method: 'POST', path: '/v1/vms', query: 'tenant_id=acme', headers: lower, body }, options);
    expect(proof).toMatchObject({ label: 'sig1', keyid: holderKey, nonce: 'n-0123456789', created: now / 1000 });
  });

  it('a request signed here verifies with it', async () => {
    const body = Buffer.from('{"name":"web-2"}');
    const request = { method: 'POST', path: '/v1/vms', query: '', headers: { host: 'example.com' }, body };
    const added = signRequest(request, { privateKey: holder.privateKey, clock });
    const result = await httpbis.verifyMessage(
      {
        keyLookup: async ({ keyid }) => (keyid === holderKey ? { id: holderKey, algs: ['ed25519'], verify: createVerifier(holder.publicKey, 'ed25519') } : null),
        requiredFields: ['@method', '@path', '@query', 'content-digest'],
        requiredParams: ['created', 'keyid', 'nonce'],
      },
      { method: 'POST', url: 'http://example.com/v1/vms', headers: { ...request.headers, ...added } },
    );
    expect(result).toBe(true);
  });
});
