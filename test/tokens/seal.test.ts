/**
 * Sealing platform private keys under the data directory's key-encryption key (src/tokens/seal.ts):
 * round trip, and every way a sealed key read back from the database can be wrong gives a SealError
 * with its own code, never an uncaught crypto error.
 */
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, keyId, rawPublicKey } from '../../src/tokens/keys.js';
import { kekId, openSealedKey, SealError, sealPrivateKey, type SealErrorCode } from '../../src/tokens/seal.js';

const kek = randomBytes(32);
const { privateKey, publicKey } = generateKeyPair();
const kid = keyId(publicKey);
const sealed = sealPrivateKey(privateKey, kid, kek);

function sealErrorOf(work: () => unknown): SealError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(SealError);
    return error as SealError;
  }
  throw new Error('expected a SealError, but nothing was thrown');
}

/** Changes one byte of part `part` (0-based, after "v1") of the sealed text. */
function tamper(text: string, part: number): string {
  const parts = text.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  bytes[0]! ^= 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

function publicOf(key: KeyObject): Buffer {
  return rawPublicKey(key.type === 'private' ? createPublicKey(key) : key);
}

describe('sealed platform keys', () => {
  it('opens to the same private key under the KEK it was sealed with', () => {
    const opened = openSealedKey(sealed, kid, kek);
    expect(publicOf(opened).equals(publicOf(publicKey))).toBe(true);
  });

  it('does not carry the private key in the clear, and seals twice to different texts (fresh nonce)', () => {
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    expect(Buffer.from(sealed).includes(der.subarray(-32).toString('base64url'))).toBe(false);
    expect(sealPrivateKey(privateKey, kid, kek)).not.toBe(sealed);
  });

  it('refuses a wrong KEK with a clear error naming both KEK ids (wrong_kek)', () => {
    const other = randomBytes(32);
    const error = sealErrorOf(() => openSealedKey(sealed, kid, other));
    expect(error.code).toBe('wrong_kek');
    expect(error.message).toContain(kekId(kek));
    expect(error.message).toContain(kekId(other));
  });

  it('refuses a sealed key whose KEK id was rewritten to the reader KEK (tampered)', () => {
    const other = randomBytes(32);
    const parts = sealed.split('.');
    parts[1] = kekId(other);
    expect(sealErrorOf(() => openSealedKey(parts.join('.'), kid, other)).code).toBe('tampered');
  });

  it.each([
    ['the nonce', 2],
    ['the ciphertext', 3],
    ['the tag', 4],
  ])('refuses a sealed key with one byte of %s changed (tampered)', (_, part) => {
    expect(sealErrorOf(() => openSealedKey(tamper(sealed, part), kid, kek)).code).toBe('tampered');
  });

  it("refuses another row's sealed key under this kid: the kid is bound in (tampered)", () => {
    const other = generateKeyPair();
    const otherSealed = sealPrivateKey(other.privateKey, keyId(other.publicKey), kek);
    expect(sealErrorOf(() => openSealedKey(otherSealed, kid, kek)).code).toBe('tampered');
  });

  it.each<[string, string, SealErrorCode]>([
    ['empty', '', 'malformed'],
    ['another version', sealed.replace(/^v1\./, 'v2.'), 'malformed'],
    ['a part missing', sealed.split('.').slice(0, 4).join('.'), 'malformed'],
    [
      'a short nonce',
      sealed
        .split('.')
        .map((p, i) => (i === 2 ? p.slice(0, 8) : p))
        .join('.'),
      'malformed',
    ],
    ['padding in a part', `${sealed}=`, 'malformed'],
    [
      'a short tag',
      sealed
        .split('.')
        .map((p, i) => (i === 4 ? p.slice(0, 10) : p))
        .join('.'),
      'malformed',
    ],
  ])('refuses a sealed key that is %s (malformed)', (_, text, code) => {
    expect(sealErrorOf(() => openSealedKey(text, kid, kek)).code).toBe(code);
  });

  it('refuses a KEK of the wrong length with a RangeError (a programming error)', () => {
    expect(() => sealPrivateKey(privateKey, kid, randomBytes(16))).toThrow(RangeError);
  });
});
