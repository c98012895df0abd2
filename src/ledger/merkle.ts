/**
 * The RFC 6962 / RFC 9162 Merkle tree over ledger entries: hashing, proofs and their verification.
 * Pure: no storage, no clock. Proof *generation* here works from the leaf hashes and is the
 * reference the store-backed tree (O(log n) per append and proof) will be checked against.
 * Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step; every input to it is untrusted.
 */
import { createHash } from 'node:crypto';
import { isPowerOfTwo, splitPoint } from './bits.js';

export const HASH_BYTES = 32;

/** MTH({}) = SHA-256() (RFC 6962 §2.1). */
export const EMPTY_ROOT = createHash('sha256').digest();

/** MTH({d}) = SHA-256(0x00 || d): the leaf hash of one entry's bytes (a string: its UTF-8 bytes). */
export function hashLeaf(entry: Uint8Array | string): Buffer {
  return createHash('sha256').update(Buffer.of(0)).update(entry).digest();
}

/** SHA-256(0x01 || left || right): an interior node. */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash('sha256').update(Buffer.of(1)).update(left).update(right).digest();
}

function checkSizes(...sizes: number[]): void {
  for (const size of sizes) if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`tree sizes are whole numbers; got ${size}`);
}

/** MTH(D[n]) over the given leaf hashes (RFC 6962 §2.1). */
export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return Buffer.from(leaves[0]!);
  const k = splitPoint(leaves.length);
  return hashChildren(rootFromLeafHashes(leaves.slice(0, k)), rootFromLeafHashes(leaves.slice(k)));
}

/** PATH(m, D[n]) (RFC 6962 §2.1.1): the inclusion proof of leaf `index` in the first `size` leaves. */
export function inclusionProof(leaves: readonly Uint8Array[], index: number, size = leaves.length): Buffer[] {
  checkSizes(index, size);
  if (size > leaves.length || index >= size) throw new RangeError(`no leaf ${index} in a tree of ${size}`);
  const path = (m: number, tree: readonly Uint8Array[]): Buffer[] => {
    if (tree.length <= 1) return [];
    const k = splitPoint(tree.length);
    return m < k ? [...path(m, tree.slice(0, k)), rootFromLeafHashes(tree.slice(k))] : [...path(m - k, tree.slice(k)), rootFromLeafHashes(tree.slice(0, k))];
  };
  return path(index, leaves.slice(0, size));
}

/** PROOF(m, D[n]) (RFC 6962 §2.1.2): the consistency proof from the first m leaves to the first n. */
export function consistencyProof(leaves: readonly Uint8Array[], m: number, n = leaves.length): Buffer[] {
  checkSizes(m, n);
  if (n > leaves.length || m > n) throw new RangeError(`no consistency proof from ${m} to ${n} over ${leaves.length} leaves`);
  if (m === 0 || m === n) return [];
  const subproof = (size: number, tree: readonly Uint8Array[], complete: boolean): Buffer[] => {
    if (size === tree.length) return complete ? [] : [rootFromLeafHashes(tree)];
    const k = splitPoint(tree.length);
    return size <= k
      ? [...subproof(size, tree.slice(0, k), complete), rootFromLeafHashes(tree.slice(k))]
      : [...subproof(size - k, tree.slice(k), false), rootFromLeafHashes(tree.slice(0, k))];
  };
  return subproof(m, leaves.slice(0, n), true);
}

/** RFC 9162: "If LSB(fn) is not set, right-shift both fn and sn equally until either LSB(fn) is set or fn is 0." */
function shiftWhileEven(fn: number, sn: number): [number, number] {
  while (fn % 2 === 0 && fn !== 0) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return [fn, sn];
}

function isHash(value: Uint8Array): boolean {
  return value.length === HASH_BYTES;
}

/** RFC 9162 §2.1.3.2: does `proof` show `leafHash` at `index` in the tree of `size` with `root`? */
export function verifyInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (!isHash(leafHash) || !isHash(root) || !proof.every(isHash)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      [fn, sn] = shiftWhileEven(fn, sn);
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 §2.1.4.2: does `proof` show the tree of `size1` with `root1` is a prefix of the one of `size2` with `root2`? */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  // RFC 9162 defines this only for 0 < size1 ≤ size2: the empty tree is a prefix of every tree, so a
  // "proof" from size 0 proves nothing, and callers with nothing seen yet skip the check instead.
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && Buffer.from(root1).equals(root2);
  if (proof.length === 0 || !proof.every(isHash) || !isHash(root1) || !isHash(root2)) return false;
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      [fn, sn] = shiftWhileEven(fn, sn);
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(root1) && sr.equals(root2);
}
