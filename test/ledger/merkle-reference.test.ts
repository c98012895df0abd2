/**
 * The Merkle core against transparency-dev/merkle's published test data (fixture directory
 * test/fixtures/transparency-dev-merkle, its source and licence named inside): every inclusion and
 * consistency vector, including the mutated ones and `additional/`, must get exactly the
 * reference's verdict; the happy paths must also be what this code's proof and root producers (the
 * in-memory reference and the stored-node tree) give for the same leaves.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { consistencyProof, hashLeaf, inclusionProof, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../src/ledger/merkle.js';
import { treeConsistencyProof, treeInclusionProof, treeRoot, type NodeReader } from '../../src/ledger/tree.js';

const DIR = 'test/fixtures/transparency-dev-merkle';

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

/** Every JSON file under `dir`, as [path relative to the fixture directory, parsed vector]. */
function vectorsIn<T>(dir: string): [string, T][] {
  const found: [string, T][] = [];
  for (const entry of readdirSync(join(DIR, dir), { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.json')) continue;
    const path = join(entry.parentPath, entry.name);
    found.push([relative(DIR, path), JSON.parse(readFileSync(path, 'utf8')) as T]);
  }
  return found.sort(([a], [b]) => a.localeCompare(b));
}

// Go's encoding/json writes []byte as base64.
const bytes = (b64: string) => Buffer.from(b64, 'base64');
const hashes = (proof: string[] | null) => (proof ?? []).map(bytes);

const INCLUSION = vectorsIn<InclusionVector>('inclusion');
const CONSISTENCY = vectorsIn<ConsistencyVector>('consistency');

// The reference's happy paths are over the Certificate Transparency leaves (proof/verify_test.go).
const CT_LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((hex) => hashLeaf(Buffer.from(hex, 'hex')));

/** The stored-node reader over the CT leaves: node (level, index) is the root of its 2^level leaves. */
const ctNode: NodeReader = (level, index) => rootFromLeafHashes(CT_LEAVES.slice(index * 2 ** level, (index + 1) * 2 ** level));

describe('Merkle reference vectors (transparency-dev/merkle testdata)', () => {
  it('holds the whole published set: inclusion and consistency, with the additional cases', () => {
    expect(INCLUSION.length).toBeGreaterThan(80);
    expect(CONSISTENCY.length).toBeGreaterThan(90);
    expect(INCLUSION.some(([path]) => path.startsWith('inclusion/additional/'))).toBe(true);
    expect(INCLUSION.some(([path]) => path.startsWith('inclusion/single-entry/'))).toBe(true);
    expect(CONSISTENCY.some(([path]) => path.startsWith('consistency/additional/'))).toBe(true);
  });

  it.each(INCLUSION)('inclusion %s: verifyInclusion gives the reference verdict', (_path, v) => {
    expect(verifyInclusion(v.leafIdx, v.treeSize, bytes(v.leafHash), hashes(v.proof), bytes(v.root)), v.desc).toBe(!v.wantErr);
  });

  it.each(CONSISTENCY)('consistency %s: verifyConsistency gives the reference verdict', (_path, v) => {
    expect(verifyConsistency(v.size1, v.size2, bytes(v.root1), bytes(v.root2), hashes(v.proof)), v.desc).toBe(!v.wantErr);
  });

  const inclusionHappy = INCLUSION.filter(([path]) => /^inclusion\/\d+\/happy-path\.json$/.test(path));
  it.each(inclusionHappy)('inclusion %s: the producers give the published leaf, root and proof', (_path, v) => {
    expect(inclusionHappy.length).toBe(5);
    expect(CT_LEAVES[v.leafIdx]!.toString('base64')).toBe(v.leafHash);
    expect(rootFromLeafHashes(CT_LEAVES.slice(0, v.treeSize)).toString('base64')).toBe(v.root);
    expect(treeRoot(v.treeSize, ctNode).toString('base64')).toBe(v.root);
    const published = (v.proof ?? []).map(String);
    expect(inclusionProof(CT_LEAVES, v.leafIdx, v.treeSize).map((h) => h.toString('base64'))).toEqual(published);
    expect(treeInclusionProof(v.leafIdx, v.treeSize, ctNode).map((h) => h.toString('base64'))).toEqual(published);
  });

  const consistencyHappy = CONSISTENCY.filter(([path]) => /^consistency\/\d+\/happy-path\.json$/.test(path));
  it.each(consistencyHappy)('consistency %s: the producers give the published roots and proof', (_path, v) => {
    expect(consistencyHappy.length).toBe(5);
    expect(rootFromLeafHashes(CT_LEAVES.slice(0, v.size1)).toString('base64')).toBe(v.root1);
    expect(rootFromLeafHashes(CT_LEAVES.slice(0, v.size2)).toString('base64')).toBe(v.root2);
    const published = (v.proof ?? []).map(String);
    expect(consistencyProof(CT_LEAVES, v.size1, v.size2).map((h) => h.toString('base64'))).toEqual(published);
    expect(treeConsistencyProof(v.size1, v.size2, ctNode).map((h) => h.toString('base64'))).toEqual(published);
  });
});
