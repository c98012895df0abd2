/**
 * The Merkle tree as it is stored: one hash per perfect subtree, node (level L, index i) covering
 * leaves [i·2^L, (i+1)·2^L). Appending leaf n stores it and the O(log n) perfect subtrees it
 * completes; a root, an inclusion proof or a consistency proof at any size reads O(log n) of them.
 * Pure: the caller passes a `node` reader. The set of nodes an operation reads depends only on the
 * sizes and indexes involved, never on hash values, so `nodesRead` can list them in advance for one
 * batched fetch. `merkle.ts` is the reference these are tested against.
 */
import { exponentOf, isPowerOfTwo, splitPoint } from './bits.js';
import { hashChildren, EMPTY_ROOT } from './merkle.js';

export interface NodeId {
  level: number;
  index: number;
}

export type NodeReader = (level: number, index: number) => Buffer;

export interface StoredNode extends NodeId {
  hash: Buffer;
}

/** MTH over leaves [start, end), from stored perfect subtrees (ranges here are always aligned). */
function rangeRoot(start: number, end: number, node: NodeReader): Buffer {
  const size = end - start;
  if (isPowerOfTwo(size)) {
    return node(exponentOf(size), start / size);
  }
  const k = splitPoint(size);
  return hashChildren(rangeRoot(start, start + k, node), rangeRoot(start + k, end, node));
}

export function treeRoot(size: number, node: NodeReader): Buffer {
  return size === 0 ? EMPTY_ROOT : rangeRoot(0, size, node);
}

/** PATH(index, D[size]) (RFC 6962 §2.1.1) from stored nodes. */
export function treeInclusionProof(index: number, size: number, node: NodeReader): Buffer[] {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    throw new RangeError(`no leaf ${index} in a tree of ${size}`);
  }
  const path = (m: number, start: number, end: number): Buffer[] => {
    if (end - start <= 1) return [];
    const k = splitPoint(end - start);
    return m < k ? [...path(m, start, start + k), rangeRoot(start + k, end, node)] : [...path(m - k, start + k, end), rangeRoot(start, start + k, node)];
  };
  return path(index, 0, size);
}

/** PROOF(m, D[n]) (RFC 6962 §2.1.2) from stored nodes. */
export function treeConsistencyProof(m: number, n: number, node: NodeReader): Buffer[] {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) throw new RangeError(`no consistency proof from ${m} to ${n}`);
  if (m === 0 || m === n) return [];
  const subproof = (size: number, start: number, end: number, complete: boolean): Buffer[] => {
    if (size === end - start) return complete ? [] : [rangeRoot(start, end, node)];
    const k = splitPoint(end - start);
    return size <= k
      ? [...subproof(size, start, start + k, complete), rangeRoot(start + k, end, node)]
      : [...subproof(size - k, start + k, end, false), rangeRoot(start, start + k, node)];
  };
  return subproof(m, 0, n, true);
}

/** The nodes `operation` reads, found by running it over a reader that records and returns zeros. */
export function nodesRead(operation: (node: NodeReader) => unknown): NodeId[] {
  const seen = new Map<string, NodeId>();
  operation((level, index) => {
    seen.set(`${level}/${index}`, { level, index });
    return Buffer.alloc(32);
  });
  return [...seen.values()];
}

/** The left siblings appending leaf `index` combines with: one per perfect subtree it completes. */
export function appendSiblings(index: number): NodeId[] {
  const siblings: NodeId[] = [];
  for (let level = 0, i = index; i % 2 === 1; level++, i = Math.floor(i / 2)) siblings.push({ level, index: i - 1 });
  return siblings;
}

/** The nodes to store when leaf `index` with `leafHash` is appended, given its left siblings. */
export function appendNodes(index: number, leafHash: Buffer, node: NodeReader): StoredNode[] {
  const nodes: StoredNode[] = [{ level: 0, index, hash: leafHash }];
  let hash = leafHash;
  for (const sibling of appendSiblings(index)) {
    hash = hashChildren(node(sibling.level, sibling.index), hash);
    nodes.push({ level: sibling.level + 1, index: Math.floor(sibling.index / 2), hash });
  }
  return nodes;
}
