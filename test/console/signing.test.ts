/**
 * The console signs requests in the browser with WebCrypto (console/src/signing.ts). Run here on
 * Node's WebCrypto, its signatures must be exactly what the server's own signer makes (Ed25519 is
 * deterministic) and pass the server's verifier (src/httpsig/verify.ts) under a pop token.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { signRequest as signOnServer } from '../../src/httpsig/sign.js';
import { verifyRequestSignature } from '../../src/httpsig/verify.js';
import { encodeBase64url, generateKeyPair, privateKeyToPem, rawPublicKey } from '../../src/tokens/keys.js';
import { importHolderKey, KeyFileError, keyMatches, signRequest } from '../../console/src/signing.js';

const clock = new ManualClock(Date.parse('2026-11-30T02:00:00Z'));
const holder = generateKeyPair();
const keyid = encodeBase64url(rawPublicKey(holder.publicKey));

async function verifyOnServer(request: { method: string; path: string; query: string; body?: Uint8Array }, headers: Record<string, string>) {
  const seen = new Set<string>();
  return verifyRequestSignature(
    { ...request, headers },
    { holderKey: keyid, clock, acceptNonce: async (key, nonce) => !seen.has(`${key} ${nonce}`) && Boolean(seen.add(`${key} ${nonce}`)) },
  );
}

describe("the console's request signatures", () => {
  const requests = [
    { method: 'GET', path: '/v1/vms', query: 'limit=1000' },
    { method: 'GET', path: '/v1/tenants/acme-corp', query: '' },
    { method: 'POST', path: '/v1/vms', query: '', body: new TextEncoder().encode('{"name":"web-1","vcpus":1}') },
  ];

  it.each(requests)("$method $path?$query: the same fields as the server's signer, byte for byte", async (request) => {
    const key = await importHolderKey(privateKeyToPem(holder.privateKey));
    const nonce = 'n0nce-of-the-test';
    const browser = await signRequest(request, { key, keyid, now: clock.now(), nonce });
    const server = signOnServer(request, { privateKey: holder.privateKey, clock, nonce: () => nonce });
    expect(browser).toEqual(server);
  });

  it.each(requests)("$method $path?$query: passes the server's verifier", async (request) => {
    const key = await importHolderKey(privateKeyToPem(holder.privateKey));
    const headers = await signRequest(request, { key, keyid, now: clock.now() });
    const proof = await verifyOnServer(request, headers);
    expect(proof.keyid).toBe(keyid);
    expect(proof.components).toEqual(request.body ? ['@method', '@path', '@query', 'content-digest'] : ['@method', '@path', '@query']);
  });

  it('a signature over one path fails the verifier for another', async () => {
    const key = await importHolderKey(privateKeyToPem(holder.privateKey));
    const headers = await signRequest({ method: 'GET', path: '/v1/vms', query: '' }, { key, keyid, now: clock.now() });
    await expect(verifyOnServer({ method: 'GET', path: '/v1/nodes', query: '' }, headers)).rejects.toMatchObject({ code: 'signature_invalid' });
  });

  it('the imported key cannot be exported', async () => {
    const key = await importHolderKey(privateKeyToPem(holder.privateKey));
    expect(key.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('pkcs8', key)).rejects.toThrow();
  });

  it("tells the token's holder key from another key", async () => {
    const key = await importHolderKey(privateKeyToPem(holder.privateKey));
    expect(await keyMatches(key, keyid)).toBe(true);
    expect(await keyMatches(key, encodeBase64url(rawPublicKey(generateKeyPair().publicKey)))).toBe(false);
    expect(await keyMatches(key, 'not-a-key')).toBe(false);
  });

  it('a file that is not a PKCS#8 PEM, or not an Ed25519 key, is refused with its reason', async () => {
    await expect(importHolderKey('hello')).rejects.toEqual(new KeyFileError('not_pkcs8'));
    const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    await expect(importHolderKey(ecKey)).rejects.toEqual(new KeyFileError('not_ed25519'));
  });
});
