/**
 * The RFC 6962 / 9162 Merkle tree: the Certificate Transparency reference vectors (fixture file,
 * source named inside), the same corruptions transparency-dev/merkle applies to them, and
 * fast-check properties over random sizes.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consistencyProof, EMPTY_ROOT, hashLeaf, inclusionProof, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../src/ledger/merkle.js';

interface Vectors {
  empty_root: string;
  leaves: string[];
  roots: string[];
  inclusion: { leaf: number; size: number; proof: string[] }[];
  consistency: { size1: number; size2: number; proof: string[] }[];
}

const V = JSON.parse(readFileSync('test/fixtures/rfc6962-merkle-vectors.json', 'utf8')) as Vectors;
const hex = (h: string) => Buffer.from(h, 'hex');
const LEAVES = V.leaves.map((l) => hashLeaf(hex(l)));
const ROOTS = V.roots.map(hex);
const SOME_HASH = hex('abacaba000000000000000000000000000000000000000000060061e00123456');

function flipBit(hash: Buffer, bit: number): Buffer {
  const copy = Buffer.from(hash);
  copy[0]! ^= 1 << bit;
  return copy;
}

describe('Merkle tree: reference vectors', () => {
  it('the empty tree hashes to SHA-256 of nothing', () => {
    expect(EMPTY_ROOT.toString('hex')).toBe(V.empty_root);
    expect(rootFromLeafHashes([]).toString('hex')).toBe(V.empty_root);
  });

  it('computes the published root of every prefix of the reference leaves', () => {
    for (let n = 1; n <= LEAVES.length; n++) expect(rootFromLeafHashes(LEAVES.slice(0, n)).toString('hex'), `size ${n}`).toBe(V.roots[n - 1]);
  });

  it.each(V.inclusion.map((v) => [v.leaf, v.size, v]))('produces and verifies the published inclusion proof of leaf %i in size %i', (_l, _s, v) => {
    const proof = v.proof.map(hex);
    expect(inclusionProof(LEAVES, v.leaf, v.size).map((h) => h.toString('hex'))).toEqual(v.proof);
    expect(verifyInclusion(v.leaf, v.size, LEAVES[v.leaf]!, proof, ROOTS[v.size - 1]!)).toBe(true);
  });

  it.each(V.consistency.map((v) => [v.size1, v.size2, v]))('produces and verifies the published consistency proof %i → %i', (_a, _b, v) => {
    const proof = v.proof.map(hex);
    expect(consistencyProof(LEAVES, v.size1, v.size2).map((h) => h.toString('hex'))).toEqual(v.proof);
    expect(verifyConsistency(v.size1, v.size2, ROOTS[v.size1 - 1]!, ROOTS[v.size2 - 1]!, proof)).toBe(true);
  });
});

describe('Merkle tree: corrupted inclusion proofs are refused', () => {
  for (const v of V.inclusion.filter((x) => x.proof.length > 0)) {
    const proof = v.proof.map(hex);
    const root = ROOTS[v.size - 1]!;
    const leaf = LEAVES[v.leaf]!;
    const probes: [string, () => boolean][] = [
      ['leaf index - 1', () => verifyInclusion(v.leaf - 1, v.size, leaf, proof, root)],
      ['leaf index + 1', () => verifyInclusion(v.leaf + 1, v.size, leaf, proof, root)],
      ['leaf index ^ 2', () => verifyInclusion(v.leaf ^ 2, v.size, leaf, proof, root)],
      ['tree size * 2', () => verifyInclusion(v.leaf, v.size * 2, leaf, proof, root)],
      ['tree size / 2', () => verifyInclusion(v.leaf, Math.floor(v.size / 2), leaf, proof, root)],
      ['wrong leaf', () => verifyInclusion(v.leaf, v.size, Buffer.from('WrongLeaf'), proof, root)],
      ['empty root', () => verifyInclusion(v.leaf, v.size, leaf, proof, EMPTY_ROOT)],
      ['random root', () => verifyInclusion(v.leaf, v.size, leaf, proof, SOME_HASH)],
      ['trailing garbage', () => verifyInclusion(v.leaf, v.size, leaf, [...proof, Buffer.alloc(0)], root)],
      ['trailing root', () => verifyInclusion(v.leaf, v.size, leaf, [...proof, root], root)],
      ['preceding garbage', () => verifyInclusion(v.leaf, v.size, leaf, [Buffer.alloc(0), ...proof], root)],
      ['preceding root', () => verifyInclusion(v.leaf, v.size, leaf, [root, ...proof], root)],
      ['removed component', () => verifyInclusion(v.leaf, v.size, leaf, proof.slice(0, -1), root)],
      ...proof.map((_, i): [string, () => boolean] => [
        `proof[${i}] bit 3`,
        () =>
          verifyInclusion(
            v.leaf,
            v.size,
            leaf,
            proof.map((p, j) => (j === i ? flipBit(p, 3) : p)),
            root,
          ),
      ]),
    ];
    it.each(probes)(`leaf ${v.leaf} in ${v.size}: %s`, (_name, probe) => expect(probe()).toBe(false));
  }
});

describe('Merkle tree: corrupted consistency proofs are refused', () => {
  for (const v of V.consistency.filter((x) => x.proof.length > 0)) {
    const proof = v.proof.map(hex);
    const r1 = ROOTS[v.size1 - 1]!;
    const r2 = ROOTS[v.size2 - 1]!;
    const probes: [string, () => boolean][] = [
      ['size1 - 1', () => verifyConsistency(v.size1 - 1, v.size2, r1, r2, proof)],
      ['size1 + 1', () => verifyConsistency(v.size1 + 1, v.size2, r1, r2, proof)],
      ['size1 ^ 2', () => verifyConsistency(v.size1 ^ 2, v.size2, r1, r2, proof)],
      ['size2 * 2', () => verifyConsistency(v.size1, v.size2 * 2, r1, r2, proof)],
      ['size2 / 2', () => verifyConsistency(v.size1, Math.floor(v.size2 / 2), r1, r2, proof)],
      ['wrong root1', () => verifyConsistency(v.size1, v.size2, Buffer.from('WrongRoot'), r2, proof)],
      ['wrong root2', () => verifyConsistency(v.size1, v.size2, r1, Buffer.from('WrongRoot'), proof)],
      ['swapped roots', () => verifyConsistency(v.size1, v.size2, r2, r1, proof)],
      ['empty proof', () => verifyConsistency(v.size1, v.size2, r1, r2, [])],
      ['trailing garbage', () => verifyConsistency(v.size1, v.size2, r1, r2, [...proof, Buffer.alloc(0)])],
      ['trailing root1', () => verifyConsistency(v.size1, v.size2, r1, r2, [...proof, r1])],
      ['trailing root2', () => verifyConsistency(v.size1, v.size2, r1, r2, [...proof, r2])],
      ['preceding garbage', () => verifyConsistency(v.size1, v.size2, r1, r2, [Buffer.alloc(0), ...proof])],
      ['preceding root1', () => verifyConsistency(v.size1, v.size2, r1, r2, [r1, ...proof])],
      ['preceding root2', () => verifyConsistency(v.size1, v.size2, r1, r2, [r2, ...proof])],
      ['preceding proof[0]', () => verifyConsistency(v.size1, v.size2, r1, r2, [proof[0]!, ...proof])],
      ['truncated proof', () => verifyConsistency(v.size1, v.size2, r1, r2, proof.slice(0, -1))],
      ...proof.map((_, i): [string, () => boolean] => [
        `proof[${i}] bit 4`,
        () =>
          verifyConsistency(
            v.size1,
            v.size2,
            r1,
            r2,
            proof.map((p, j) => (j === i ? flipBit(p, 4) : p)),
          ),
      ]),
    ];
    it.each(probes)(`${v.size1} → ${v.size2}: %s`, (_name, probe) => expect(probe()).toBe(false));
  }

  it('accepts only equal sizes with equal roots without a proof', () => {
    const [a, b] = [ROOTS[0]!, ROOTS[1]!];
    expect(verifyConsistency(1, 1, a, a, [])).toBe(true);
    expect(verifyConsistency(1, 1, a, b, [])).toBe(false);
    expect(verifyConsistency(2, 1, a, b, [])).toBe(false);
    expect(verifyConsistency(1, 2, a, b, [])).toBe(false);
    expect(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])).toBe(false);
  });

  it('refuses every consistency check from size 0: the empty tree has nothing to be consistent with (RFC 9162 §2.1.4.2)', () => {
    const [a, b] = [ROOTS[0]!, ROOTS[1]!];
    expect(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])).toBe(false);
    expect(verifyConsistency(0, 0, a, b, [])).toBe(false);
    expect(verifyConsistency(0, 5, a, b, [])).toBe(false);
    expect(verifyConsistency(0, 5, EMPTY_ROOT, ROOTS[4]!, [])).toBe(false);
    expect(verifyConsistency(0, 1, EMPTY_ROOT, a, [a])).toBe(false);
  });
});

describe('Merkle tree: properties over random trees', () => {
  const tree = fc.integer({ min: 1, max: 70 }).map((n) => Array.from({ length: n }, (_, i) => hashLeaf(Buffer.from(`entry ${i} of ${n}`))));

  it('every inclusion proof verifies, and flipping any bit of proof, leaf or root breaks it', () => {
    fc.assert(
      fc.property(tree, fc.nat(), fc.nat(), fc.nat(255), (leaves, a, b, bit) => {
        const size = 1 + (a % leaves.length);
        const index = b % size;
        const root = rootFromLeafHashes(leaves.slice(0, size));
        const proof = inclusionProof(leaves, index, size);
        expect(verifyInclusion(index, size, leaves[index]!, proof, root)).toBe(true);
        const flip = (h: Buffer) => {
          const c = Buffer.from(h);
          c[(bit >> 3) % 32]! ^= 1 << (bit & 7);
          return c;
        };
        expect(verifyInclusion(index, size, flip(leaves[index]!), proof, root)).toBe(false);
        expect(verifyInclusion(index, size, leaves[index]!, proof, flip(root))).toBe(false);
        if (proof.length > 0) {
          const k = bit % proof.length;
          expect(
            verifyInclusion(
              index,
              size,
              leaves[index]!,
              proof.map((p, j) => (j === k ? flip(p) : p)),
              root,
            ),
          ).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('every consistency proof m ≤ n verifies, and flipping any bit of proof or roots breaks it', () => {
    fc.assert(
      fc.property(tree, fc.nat(), fc.nat(), fc.nat(255), (leaves, a, b, bit) => {
        const n = 1 + (a % leaves.length);
        const m = 1 + (b % n);
        const r1 = rootFromLeafHashes(leaves.slice(0, m));
        const r2 = rootFromLeafHashes(leaves.slice(0, n));
        const proof = consistencyProof(leaves, m, n);
        expect(verifyConsistency(m, n, r1, r2, proof)).toBe(true);
        if (m === n) return;
        const flip = (h: Buffer) => {
          const c = Buffer.from(h);
          c[(bit >> 3) % 32]! ^= 1 << (bit & 7);
          return c;
        };
        expect(verifyConsistency(m, n, flip(r1), r2, proof)).toBe(false);
        expect(verifyConsistency(m, n, r1, flip(r2), proof)).toBe(false);
        const k = bit % proof.length;
        expect(
          verifyConsistency(
            m,
            n,
            r1,
            r2,
            proof.map((p, j) => (j === k ? flip(p) : p)),
          ),
        ).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('a tree and any other tree of the same size but one different leaf have different roots', () => {
    fc.assert(
      fc.property(tree, fc.nat(), (leaves, i) => {
        const changed = [...leaves];
        changed[i % leaves.length] = hashLeaf(Buffer.from('tampered'));
        expect(rootFromLeafHashes(changed).equals(rootFromLeafHashes(leaves))).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
