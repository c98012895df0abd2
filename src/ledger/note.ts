/**
 * C2SP signed-note with Ed25519 (https://c2sp.org/signed-note): a text ending in a newline, a blank
 * line, then one line per signature, `— <key name> <base64(key hash ‖ signature)>`. The key hash is
 * the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key); a verifier key is written
 * `<name>+<hex key hash>+<base64(0x01 ‖ public key)>`. Notes and keys arrive from untrusted places:
 * every parse failure is a LedgerError.
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { publicKeyFromRaw, rawPublicKey } from '../tokens/keys.js';
import { LedgerError } from './error.js';

const ALG_ED25519 = 0x01;
const SIGNATURE_PREFIX = '— ';
const MAX_NOTE_BYTES = 1_000_000;

export interface VerifierKey {
  name: string;
  keyHash: Buffer;
  publicKey: KeyObject;
}

function isKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/.test(name);
}

export function noteKeyHash(name: string, rawKey: Uint8Array): Buffer {
  return createHash('sha256').update(name).update('\n').update(Buffer.of(ALG_ED25519)).update(rawKey).digest().subarray(0, 4);
}

/** The verifier key text for a signing key: what clients pin to check checkpoints. */
export function verifierKeyText(name: string, signingKey: KeyObject): string {
  if (!isKeyName(name)) throw new TypeError('a key name has no spaces, newlines or "+"');
  const raw = rawPublicKey(createPublicKey(signingKey));
  return `${name}+${noteKeyHash(name, raw).toString('hex')}+${Buffer.concat([Buffer.of(ALG_ED25519), raw]).toString('base64')}`;
}

export function parseVerifierKey(text: string): VerifierKey {
  const parts = text.trim().split('+');
  // The base64 of the key may itself contain '+'.
  const [name, hashHex] = parts;
  const keyText = parts.slice(2).join('+');
  if (parts.length < 3 || !name || !isKeyName(name) || !/^[0-9a-f]{8}$/.test(hashHex ?? '')) {
    throw new LedgerError('malformed_key', 'a verifier key is <name>+<8 hex digits>+<base64 key>');
  }
  const decoded = Buffer.from(keyText, 'base64');
  if (decoded.toString('base64') !== keyText || decoded.length !== 33 || decoded[0] !== ALG_ED25519) {
    throw new LedgerError('malformed_key', 'the key part is not base64 of 0x01 and a 32-byte Ed25519 key');
  }
  const raw = decoded.subarray(1);
  const keyHash = Buffer.from(hashHex!, 'hex');
  if (!noteKeyHash(name, raw).equals(keyHash)) throw new LedgerError('malformed_key', 'the key hash does not match the name and key');
  return { name, keyHash, publicKey: publicKeyFromRaw(raw) };
}

/** Signs `text` (which must end in a newline) as a note with one signature. */
export function signNote(text: string, name: string, signingKey: KeyObject): string {
  if (!text.endsWith('\n')) throw new TypeError('a note text ends with a newline');
  const raw = rawPublicKey(createPublicKey(signingKey));
  const signature = sign(null, Buffer.from(text), signingKey);
  return `${text}\n${SIGNATURE_PREFIX}${name} ${Buffer.concat([noteKeyHash(name, raw), signature]).toString('base64')}\n`;
}

/**
 * Verifies a note against a key and returns its text. Signatures by other keys are ignored, as the
 * spec allows (cosigners); at least one must be by `key` and valid.
 */
export function openNote(note: string, key: VerifierKey): string {
  if (Buffer.byteLength(note) > MAX_NOTE_BYTES) throw new LedgerError('malformed_note', 'note is too large');
  if (!note.endsWith('\n')) throw new LedgerError('malformed_note', 'note does not end with a newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new LedgerError('malformed_note', 'note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  let sawKey = false;
  for (const line of lines) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new LedgerError('malformed_note', 'a signature line starts with "— "');
    const [name, blob, extra] = line.slice(SIGNATURE_PREFIX.length).split(' ');
    if (!name || !blob || extra !== undefined || !isKeyName(name)) throw new LedgerError('malformed_note', 'a signature line is "— <name> <base64>"');
    const bytes = Buffer.from(blob, 'base64');
    if (bytes.toString('base64') !== blob || bytes.length < 5) throw new LedgerError('malformed_note', 'a signature is not base64 of a key hash and a signature');
    if (name !== key.name || !bytes.subarray(0, 4).equals(key.keyHash)) continue;
    sawKey = true;
    if (bytes.length === 68 && verify(null, Buffer.from(text), key.publicKey, bytes.subarray(4))) return text;
  }
  if (!sawKey) throw new LedgerError('unknown_key', `note has no signature by ${key.name}`);
  throw new LedgerError('bad_signature', `the signature by ${key.name} does not verify`);
}
