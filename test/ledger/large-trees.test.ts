/**
 * Proofs at tree sizes near the top of the safe-integer range (2^49 ± 1, 2^52 ± 1, 2^53 − 3, …),
 * where a floating-point logarithm takes a size for a power of two that is not one.
 *
 * No one can hash 2^52 leaves, so these trees are sparse: every leaf is the same DEFAULT hash except
 * a few named ones, each hashed from its index. The root of a range without a named leaf then
 * depends only on its length and is memoized, so any subtree root costs O(log n) hashes per named
 * leaf inside it. Proofs are built from those roots by the RFC 6962 §2.1.1–2.1.2 definitions
 * (written here over index ranges, independently of src/ledger), and the store-backed producers in
 * tree.ts read the same roots as their stored nodes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exponentOf, isPowerOfTwo } from '../../src/ledger/bits.js';
import { hashChildren, hashLeaf, verifyConsistency, verifyInclusion } from '../../src/ledger/merkle.js';
import { treeConsistencyProof, treeInclusionProof, treeRoot, type NodeReader } from '../../src/ledger/tree.js';

const MAX = Number.MAX_SAFE_INTEGER; // 2^53 − 1
const EDGES = [2 ** 49 - 1, 2 ** 49, 2 ** 49 + 1, 2 ** 50 + 1, 2 ** 51 - 1, 2 ** 52 - 1, 2 ** 52, 2 ** 52 + 1, 2 ** 53 - 3, 2 ** 53 - 2];
const DEFAULT = hashLeaf(Buffer.from('default leaf'));

/** The largest power of two below n (n ≥ 2), by doubling: exact for every safe integer. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const defaultRoots = new Map<number, Buffer>([[1, DEFAULT]]);
/** MTH of n DEFAULT leaves. */
function defaultRoot(n: number): Buffer {
  let root = defaultRoots.get(n);
  if (!root) {
    const k = split(n);
    root = hashChildren(defaultRoot(k), defaultRoot(n - k));
    defaultRoots.set(n, root);
  }
  return root;
}

class SparseTree {
  private readonly named: number[];

  constructor(named: Iterable<number>) {
    this.named = [...new Set(named)].filter((i) => i >= 0).sort((a, b) => a - b);
  }

  leaf(index: number): Buffer {
    return this.named.includes(index) ? hashLeaf(Buffer.from(`leaf ${index}`)) : DEFAULT;
  }

  /** MTH of leaves [start, end) (RFC 6962 §2.1). */
  root(start: number, end: number): Buffer {
    const n = end - start;
    if (!this.named.some((i) => i >= start && i < end)) return defaultRoot(n);
    if (n === 1) return this.leaf(start);
    const k = split(n);
    return hashChildren(this.root(start, start + k), this.root(start + k, end));
  }

  /** PATH(m, D[start:end]) (RFC 6962 §2.1.1). */
  inclusion(m: number, start: number, end: number): Buffer[] {
    if (end - start <= 1) return [];
    const k = split(end - start);
    return m < k ? [...this.inclusion(m, start, start + k), this.root(start + k, end)] : [...this.inclusion(m - k, start + k, end), this.root(start, start + k)];
  }

  /** SUBPROOF(m, D[start:end], complete) (RFC 6962 §2.1.2). */
  consistency(m: number, start: number, end: number, complete = true): Buffer[] {
    if (m === end - start) return complete ? [] : [this.root(start, end)];
    const k = split(end - start);
    return m <= k
      ? [...this.consistency(m, start, start + k, complete), this.root(start + k, end)]
      : [...this.consistency(m - k, start + k, end, false), this.root(start, start + k)];
  }

  /** What the store would hold: node (level, index) is the root of its 2^level leaves. */
  readonly node: NodeReader = (level, index) => this.root(index * 2 ** level, (index + 1) * 2 ** level);
}

const hex = (hashes: Buffer[]) => hashes.map((h) => h.toString('hex'));
const flip = (hashes: Buffer[], k: number) => hashes.map((h, j) => (j === k ? Buffer.from(h.map((b, i) => (i === 0 ? b ^ 1 : b))) : h));

/** Checks both producers and the verifier on the consistency proof size1 → size2 of `tree`. */
function checkConsistency(tree: SparseTree, size1: number, size2: number): void {
  const [root1, root2] = [tree.root(0, size1), tree.root(0, size2)];
  const proof = tree.consistency(size1, 0, size2);
  expect(verifyConsistency(size1, size2, root1, root2, proof), `${size1} → ${size2}`).toBe(true);
  expect(hex(treeConsistencyProof(size1, size2, tree.node)), `stored-tree proof ${size1} → ${size2}`).toEqual(hex(proof));
  expect(treeRoot(size2, tree.node).equals(root2), `stored-tree root ${size2}`).toBe(true);
  if (size1 === size2) return;
  expect(verifyConsistency(size1, size2, root2, root1, proof)).toBe(false);
  expect(verifyConsistency(size1, size2, root1, root2, flip(proof, proof.length - 1))).toBe(false);
  expect(verifyConsistency(size1 + 1, size2, root1, root2, proof)).toBe(false);
}

function checkInclusion(tree: SparseTree, index: number, size: number): void {
  const root = tree.root(0, size);
  const proof = tree.inclusion(index, 0, size);
  expect(verifyInclusion(index, size, tree.leaf(index), proof, root), `${index} in ${size}`).toBe(true);
  expect(hex(treeInclusionProof(index, size, tree.node)), `stored-tree proof of ${index} in ${size}`).toEqual(hex(proof));
  expect(verifyInclusion(index, size, tree.leaf(index), flip(proof, 0), root)).toBe(false);
}

describe('Merkle tree sizes up to 2^53 − 1', () => {
  it('tells powers of two from their neighbours with integer bit tests, up to 2^53 − 1', () => {
    for (let k = 0; k <= 52; k++) {
      expect(isPowerOfTwo(2 ** k), `2^${k}`).toBe(true);
      expect(exponentOf(2 ** k)).toBe(k);
      if (k >= 2) expect(isPowerOfTwo(2 ** k - 1), `2^${k} − 1`).toBe(false);
      if (k >= 1) expect(isPowerOfTwo(2 ** k + 1), `2^${k} + 1`).toBe(false);
    }
    for (const n of [0, -1, -2, 0.5, 3, 6, 2 ** 53 - 3, MAX, 2 ** 53, Number.NaN, Infinity]) expect(isPowerOfTwo(n), `${n}`).toBe(false);
    expect(() => exponentOf(2 ** 49 + 1)).toThrow(RangeError);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX }), (n) => {
        expect(isPowerOfTwo(n)).toBe((BigInt(n) & (BigInt(n) - 1n)) === 0n);
      }),
      { numRuns: 2000 },
    );
  });

  it.each(EDGES)('verifies and produces consistency proofs from size %i to larger trees', (size1) => {
    for (const size2 of new Set([size1 + 1, size1 + 2, size1 + 2 ** 20 + 7, MAX].filter((s) => s <= MAX))) {
      checkConsistency(new SparseTree([0, 1, size1 - 1, size1, size2 - 1, Math.floor(size1 / 3)]), size1, size2);
    }
  });

  it.each(EDGES)('verifies and produces consistency proofs from small trees to size %i', (size2) => {
    for (const size1 of [1, 2, 3, 7, 8, 1000]) checkConsistency(new SparseTree([0, size1 - 1, size1, size2 - 1]), size1, size2);
  });

  it.each([...EDGES, MAX])('verifies and produces inclusion proofs in a tree of size %i', (size) => {
    const tree = new SparseTree([0, 2 ** 48, size - 2, size - 1]);
    for (const index of [0, 2 ** 48, size - 2, size - 1]) checkInclusion(tree, index, size);
  });

  it('verifies consistency proofs between random sizes across the whole safe range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX }), fc.integer({ min: 1, max: MAX }), (a, b) => {
        const [size1, size2] = a <= b ? [a, b] : [b, a];
        checkConsistency(new SparseTree([0, size1 - 1, size1, size2 - 1]), size1, size2);
      }),
      { numRuns: 60 },
    );
  });
});
