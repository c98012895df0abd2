/**
 * Ed25519 keys in the forms the product shows and accepts. A public key travels as 32 raw bytes in
 * base64url without padding; on input standard base64 and hex are accepted too (SPEC §5).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

export function encodeBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** Strict base64url decoding: rejects padding and any character outside the alphabet. */
export function decodeBase64url(text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64url');
  // Node ignores trailing bits; re-encoding catches non-canonical forms.
  return bytes.toString('base64url') === text ? bytes : null;
}

// Encodings of the Ed25519 points of small order (1, 2, 4, 8), as libsodium lists them, compared
// with the sign bit cleared. A holder key among them lets anyone forge that holder's signatures
// for a fraction of messages, so such keys are refused wherever a key names a holder.
const SMALL_ORDER_POINTS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Buffer.from(hex, 'hex'));

export function isSmallOrderPoint(raw: Uint8Array): boolean {
  if (raw.length !== 32) return false;
  return SMALL_ORDER_POINTS.some((point) => point.subarray(0, 31).equals(raw.subarray(0, 31)) && point[31] === (raw[31]! & 0x7f));
}

/**
 * Parses a holder's public key given as base64url, base64 or hex. Returns null when it is not 32
 * bytes or is a small-order point.
 */
export function parsePublicKeyText(text: string): Buffer | null {
  const trimmed = text.trim();
  let bytes: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) bytes = Buffer.from(trimmed, 'hex');
  else if (/^[A-Za-z0-9_-]{43}$/.test(trimmed)) bytes = decodeBase64url(trimmed);
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(trimmed)) bytes = Buffer.from(trimmed, 'base64');
  return bytes && bytes.length === 32 && !isSmallOrderPoint(bytes) ? bytes : null;
}

export function publicKeyFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new RangeError('an Ed25519 public key is 32 bytes');
  // As a JWK rather than DER: the same key, imported about fifteen times faster here (DER goes
  // through OpenSSL's decoder and costs nearly as much as a verify), and every delegated block and
  // every signed request imports one.
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
}

const HOLDER_KEY_CACHE_LIMIT = 10_000;
const holderKeys = new Map<string, KeyObject>();

/**
 * A holder's public key from its base64url text (already checked to be 32 bytes), imported once and
 * then kept: the same holders sign request after request and delegate token after token, and an
 * import is the one step of checking their signatures that is not the verify itself. Bounded: the
 * oldest entry goes first.
 */
export function holderPublicKey(text: string): KeyObject {
  let key = holderKeys.get(text);
  if (!key) {
    const raw = decodeBase64url(text);
    if (!raw) throw new RangeError('a holder key is base64url');
    key = publicKeyFromRaw(raw);
    if (holderKeys.size >= HOLDER_KEY_CACHE_LIMIT) holderKeys.delete(holderKeys.keys().next().value!);
    holderKeys.set(text, key);
  }
  return key;
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function generateKeyPair(): KeyPair {
  return generateKeyPairSync('ed25519');
}

export function privateKeyToPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function privateKeyFromPem(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('not an Ed25519 private key');
  return key;
}

/** Names a platform signing key inside tokens (`kid`): SHA-256 of the raw public key, 8 bytes, base64url. */
export function keyId(publicKey: KeyObject): string {
  return createHash('sha256').update(rawPublicKey(publicKey)).digest().subarray(0, 8).toString('base64url');
}
