/**
 * Checking the audit ledger in the browser, with WebCrypto: RFC 9162 inclusion and consistency
 * proofs (§2.1.3.2, §2.1.4.2), C2SP signed notes with Ed25519 and C2SP tlog-checkpoint bodies, as
 * src/ledger/merkle.ts, note.ts and checkpoint.ts check them on the server. Everything here arrives from the network and
 * is untrusted: a failure is a LedgerCheckError with a code, never a thrown TypeError.
 * test/console/ledger.test.ts runs it on the same outside vectors as the server's code.
 */
import { decodeBase64 } from './signing.js';

export type LedgerCheckFailure = 'malformed_key' | 'malformed_note' | 'unknown_key' | 'bad_signature' | 'malformed_checkpoint' | 'bad_proof';

export class LedgerCheckError extends Error {
  constructor(
    readonly code: LedgerCheckFailure,
    message: string,
  ) {
    super(message);
    this.name = 'LedgerCheckError';
  }
}

type Bytes = Uint8Array<ArrayBuffer>;

const encoder = new TextEncoder();
const ALG_ED25519 = 0x01;
const SIGNATURE_PREFIX = '— ';

async function sha256(...parts: Uint8Array[]): Promise<Bytes> {
  const all = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', all));
}

export function fromHex(text: string): Bytes | null {
  if (!/^(?:[0-9a-f]{2})*$/.test(text)) return null;
  return Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** SHA-256(0x00 ‖ entry bytes): the leaf hash of a ledger entry as stored (`leaf_input`). */
export function hashLeaf(entry: Uint8Array): Promise<Bytes> {
  return sha256(Uint8Array.of(0), entry);
}

export function hashChildren(left: Uint8Array, right: Uint8Array): Promise<Bytes> {
  return sha256(Uint8Array.of(1), left, right);
}

/** RFC 9162 §2.1.3.2: does `proof` show `leafHash` at `index` in the tree of `size` with `root`? */
export async function verifyInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): Promise<boolean> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (leafHash.length !== 32 || root.length !== 32 || !proof.every((p) => p.length === 32)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leafHash;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await hashChildren(p, r);
      // Right-shift both until fn's lowest bit is set or fn is 0.
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(r, root);
}

/** For tree sizes past 2^31, where bitwise operators no longer hold them. */
function isPowerOfTwo(n: number): boolean {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree of `size1` with `root1` is a prefix of the tree
 * of `size2` with `root2`, every entry of the first unchanged in the second? Defined for
 * 0 < size1 ≤ size2: the empty tree is a prefix of every tree, so there is nothing to prove from it.
 */
export async function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): Promise<boolean> {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && equalBytes(root1, root2);
  if (proof.length === 0 || root1.length !== 32 || root2.length !== 32 || !proof.every((p) => p.length === 32)) return false;
  // When size1 is a power of two, its root is a node of the larger tree and starts the path.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Uint8Array = path[0]!;
  let sr: Uint8Array = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = await hashChildren(c, fr);
      sr = await hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = await hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(fr, root1) && equalBytes(sr, root2);
}

export interface VerifierKey {
  /** The key's text, as pinned. */
  text: string;
  name: string;
  keyHash: Bytes;
  publicKey: Awaited<ReturnType<typeof crypto.subtle.importKey>>;
}

function isKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/.test(name);
}

async function noteKeyHash(name: string, raw: Uint8Array): Promise<Bytes> {
  return (await sha256(encoder.encode(`${name}\n`), Uint8Array.of(ALG_ED25519), raw)).slice(0, 4);
}

/** `<name>+<hex key hash>+<base64(0x01 ‖ public key)>` (C2SP signed-note). */
export async function parseVerifierKey(text: string): Promise<VerifierKey> {
  const trimmed = text.trim();
  const parts = trimmed.split('+');
  const [name, hashHex] = parts;
  const keyText = parts.slice(2).join('+');
  const keyHash = fromHex(hashHex ?? '');
  if (parts.length < 3 || !name || !isKeyName(name) || keyHash === null || keyHash.length !== 4) {
    throw new LedgerCheckError('malformed_key', 'a verifier key is <name>+<8 hex digits>+<base64 key>');
  }
  const decoded = decodeBase64(keyText);
  if (decoded === null || decoded.length !== 33 || decoded[0] !== ALG_ED25519) {
    throw new LedgerCheckError('malformed_key', 'the key part is not base64 of 0x01 and a 32-byte Ed25519 key');
  }
  const raw = decoded.slice(1);
  if (!equalBytes(await noteKeyHash(name, raw), keyHash)) throw new LedgerCheckError('malformed_key', 'the key hash does not match the name and key');
  try {
    const publicKey = await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
    return { text: trimmed, name, keyHash, publicKey };
  } catch {
    throw new LedgerCheckError('malformed_key', 'the key is not an Ed25519 public key');
  }
}

/** The text of `note` when a signature by `key` verifies; signatures by other keys are ignored (cosigners). */
export async function openNote(note: string, key: VerifierKey): Promise<string> {
  if (!note.endsWith('\n')) throw new LedgerCheckError('malformed_note', 'note does not end with a newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new LedgerCheckError('malformed_note', 'note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  let sawKey = false;
  for (const line of note.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith(SIGNATURE_PREFIX)) throw new LedgerCheckError('malformed_note', 'a signature line starts with "— "');
    const [name, blob, extra] = line.slice(SIGNATURE_PREFIX.length).split(' ');
    const bytes = decodeBase64(blob ?? '');
    if (!name || extra !== undefined || bytes === null || bytes.length < 5) throw new LedgerCheckError('malformed_note', 'a signature line is "— <name> <base64>"');
    if (name !== key.name || !equalBytes(bytes.slice(0, 4), key.keyHash)) continue;
    sawKey = true;
    if (bytes.length === 68 && (await crypto.subtle.verify('Ed25519', key.publicKey, bytes.slice(4), encoder.encode(text)))) return text;
  }
  if (!sawKey) throw new LedgerCheckError('unknown_key', `the note has no signature by ${key.name}`);
  throw new LedgerCheckError('bad_signature', `the signature by ${key.name} does not verify`);
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Bytes;
}

/** A C2SP tlog-checkpoint body: origin, tree size, base64 root hash, each on its own line. */
export function parseCheckpoint(text: string): Checkpoint {
  const [origin, sizeText, rootText] = text.slice(0, -1).split('\n');
  const root = decodeBase64(rootText ?? '');
  if (!origin || !/^(0|[1-9][0-9]{0,15})$/.test(sizeText ?? '') || root === null || root.length !== 32) {
    throw new LedgerCheckError('malformed_checkpoint', 'a checkpoint is an origin line, a tree size and a base64 SHA-256 root');
  }
  return { origin, size: Number(sizeText), root };
}
