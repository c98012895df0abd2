/**
 * The stored tree (perfect-subtree nodes) against the reference implementation in merkle.ts:
 * the same roots and proofs at every size, built by appending one leaf at a time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consistencyProof, hashLeaf, inclusionProof, rootFromLeafHashes } from '../../src/ledger/merkle.js';
import { appendNodes, appendSiblings, nodesRead, treeConsistencyProof, treeInclusionProof, treeRoot, type NodeReader } from '../../src/ledger/tree.js';

function build(count: number) {
  const leaves = Array.from({ length: count }, (_, i) => hashLeaf(Buffer.from(`leaf ${i}`)));
  const nodes = new Map<string, Buffer>();
  const node: NodeReader = (level, index) => {
    const hash = nodes.get(`${level}/${index}`);
    if (!hash) throw new Error(`node ${level}/${index} was never stored`);
    return hash;
  };
  leaves.forEach((leaf, i) => {
    for (const stored of appendNodes(i, leaf, node)) nodes.set(`${stored.level}/${stored.index}`, stored.hash);
  });
  return { leaves, nodes, node };
}

describe('stored tree against the reference', () => {
  const { leaves, nodes, node } = build(70);

  it('stores 2n - popcount(n) nodes for n leaves: each perfect subtree once', () => {
    const popcount = (n: number) =>
      n
        .toString(2)
        .split('')
        .filter((b) => b === '1').length;
    expect(nodes.size).toBe(2 * 70 - popcount(70));
  });

  it('has the reference root at every size', () => {
    for (let n = 0; n <= leaves.length; n++) expect(treeRoot(n, node).equals(rootFromLeafHashes(leaves.slice(0, n))), `size ${n}`).toBe(true);
  });

  it('gives the reference inclusion and consistency proofs at every size (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.nat(), (n, a, b) => {
        const index = a % n;
        const m = b % (n + 1);
        expect(treeInclusionProof(index, n, node)).toEqual(inclusionProof(leaves, index, n));
        expect(treeConsistencyProof(m, n, node)).toEqual(consistencyProof(leaves, m, n));
      }),
      { numRuns: 400 },
    );
  });

  it('reads O(log n) nodes for a proof, and can list them before reading', () => {
    const size = 1_000_000;
    const read = nodesRead((n) => treeInclusionProof(123_457, size, n));
    expect(read.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size)));
    const consistency = nodesRead((n) => treeConsistencyProof(333_333, size, n));
    expect(consistency.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size)));
  });

  it('appending leaf i combines it with one left sibling per trailing 1 bit of i', () => {
    expect(appendSiblings(0)).toEqual([]);
    expect(appendSiblings(1)).toEqual([{ level: 0, index: 0 }]);
    expect(appendSiblings(7)).toEqual([
      { level: 0, index: 6 },
      { level: 1, index: 2 },
      { level: 2, index: 0 },
    ]);
    expect(appendSiblings(10)).toEqual([]);
  });
});
