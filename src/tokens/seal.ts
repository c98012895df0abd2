/**
 * Platform private keys sealed for the store: AES-256-GCM under a key-encryption key (KEK) that
 * lives only in the data directory, so whoever can read the database cannot mint tokens, and
 * cannot slip in a key of their own either (a row must authenticate under the KEK to be loaded).
 *
 * Sealed form: `v1.<kek id>.<nonce>.<ciphertext>.<tag>`, base64url parts. The additional data binds
 * the ciphertext to its kid, so two rows' sealed keys cannot be swapped. The sealed text comes from
 * the database: it is parsed strictly and every failure is a SealError, never an uncaught one.
 */
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { decodeBase64url } from './keys.js';

export const KEK_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export type SealErrorCode = 'malformed' | 'wrong_kek' | 'tampered';

export class SealError extends Error {
  constructor(
    readonly code: SealErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SealError';
  }
}

/** Names a KEK without revealing it, so a mismatch can be reported: 8 bytes of a domain-separated SHA-256. */
export function kekId(kek: Uint8Array): string {
  if (kek.length !== KEK_BYTES) throw new RangeError(`a key-encryption key is ${KEK_BYTES} bytes`);
  return createHash('sha256').update('ppn-keyset-kek-v1\n').update(kek).digest().subarray(0, 8).toString('base64url');
}

function additionalData(kid: string): Buffer {
  return Buffer.from(`ppn-platform-key-v1\n${kid}`);
}

export function sealPrivateKey(privateKey: KeyObject, kid: string, kek: Uint8Array): string {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, nonce).setAAD(additionalData(kid));
  const plain = privateKey.export({ format: 'der', type: 'pkcs8' });
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  return ['v1', kekId(kek), nonce, ciphertext, cipher.getAuthTag()].map((part) => (typeof part === 'string' ? part : part.toString('base64url'))).join('.');
}

export function openSealedKey(sealed: string, kid: string, kek: Uint8Array): KeyObject {
  const parts = sealed.split('.');
  if (parts.length !== 5 || parts[0] !== 'v1') throw new SealError('malformed', `the sealed private key of ${kid} is not in the v1 form`);
  const [, sealedKek, ...rest] = parts as [string, string, string, string, string];
  const [nonce, ciphertext, tag] = rest.map(decodeBase64url);
  if (!nonce || nonce.length !== NONCE_BYTES || !ciphertext || !tag || tag.length !== TAG_BYTES) {
    throw new SealError('malformed', `the sealed private key of ${kid} has a bad nonce, ciphertext or tag`);
  }
  const ours = kekId(kek);
  if (sealedKek !== ours) {
    throw new SealError('wrong_kek', `the private key of ${kid} is sealed under key-encryption key ${sealedKek}, but this one is ${ours}`);
  }
  const decipher = createDecipheriv('aes-256-gcm', kek, nonce).setAAD(additionalData(kid)).setAuthTag(tag);
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new SealError('tampered', `the sealed private key of ${kid} does not authenticate: it was altered, or belongs to another kid`);
  }
  const key = createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
  if (key.asymmetricKeyType !== 'ed25519') throw new SealError('malformed', `the sealed private key of ${kid} is not Ed25519`);
  return key;
}
