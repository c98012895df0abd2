/**
 * The console checks the audit ledger in the browser (console/src/ledger.ts, WebCrypto). Run here
 * on Node's WebCrypto: the outside vectors the server's own checks are held to (Certificate
 * Transparency's RFC 6962 trees, the Go sumdb/note example), proofs the server makes for random
 * trees, and a mutation of each input, which must fail and never throw anything but a LedgerCheckError.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCheckpoint } from '../../src/ledger/checkpoint.js';
import { consistencyProof, hashLeaf as serverHashLeaf, inclusionProof, rootFromLeafHashes } from '../../src/ledger/merkle.js';
import { signNote, verifierKeyText } from '../../src/ledger/note.js';
import { generateKeyPair } from '../../src/tokens/keys.js';
import { fromHex, hashLeaf, LedgerCheckError, openNote, parseCheckpoint, parseVerifierKey, verifyConsistency, verifyInclusion } from '../../console/src/ledger.js';

const CT = JSON.parse(readFileSync('test/fixtures/rfc6962-merkle-vectors.json', 'utf8')) as {
  leaves: string[];
  roots: string[];
  inclusion: { leaf: number; size: number; proof: string[] }[];
};
/** transparency-dev/merkle's consistency vectors (test/fixtures/transparency-dev-merkle, its licence beside them). */
const CONSISTENCY_DIR = 'test/fixtures/transparency-dev-merkle/consistency';
const CONSISTENCY = readdirSync(CONSISTENCY_DIR, { recursive: true, encoding: 'utf8' })
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map(
    (name) =>
      [name, JSON.parse(readFileSync(join(CONSISTENCY_DIR, name), 'utf8'))] as [
        string,
        { size1: number; size2: number; root1: string; root2: string; proof: string[] | null; desc: string; wantErr: boolean },
      ],
  );
const NOTE = JSON.parse(readFileSync('test/fixtures/c2sp-signed-note.json', 'utf8')) as Record<string, string>;

const hex = (text: string) => fromHex(text)!;
const flipped = (bytes: Uint8Array, at = 0) => Uint8Array.from(bytes, (b, i) => (i === at ? b ^ 1 : b));

async function expectCheckError(run: Promise<unknown>, code: string): Promise<void> {
  const error = await run.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LedgerCheckError);
  expect((error as LedgerCheckError).code).toBe(code);
}

describe('inclusion proofs in the browser', () => {
  it.each(CT.inclusion)('the Certificate Transparency vector: leaf $leaf of $size', async ({ leaf, size, proof }) => {
    const leafHash = await hashLeaf(hex(CT.leaves[leaf]!));
    const root = hex(CT.roots[size - 1]!);
    const path = proof.map(hex);
    expect(await verifyInclusion(leaf, size, leafHash, path, root)).toBe(true);
    expect(await verifyInclusion(leaf, size, flipped(leafHash), path, root)).toBe(false);
    expect(await verifyInclusion(leaf, size, leafHash, path, flipped(root))).toBe(false);
    if (path.length > 0) {
      expect(await verifyInclusion(leaf, size, leafHash, [flipped(path[0]!, 31), ...path.slice(1)], root)).toBe(false);
      expect(await verifyInclusion(leaf, size, leafHash, path.slice(1), root)).toBe(false);
    }
  });

  it("accepts every proof the server's tree makes, and refuses it for another leaf", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.nat(), async (size, pick) => {
        const leaves = Array.from({ length: size }, (_, i) => serverHashLeaf(Buffer.from(`{"index":${i}}`)));
        const index = pick % size;
        const root = rootFromLeafHashes(leaves);
        const proof = inclusionProof(leaves, index);
        expect(await verifyInclusion(index, size, await hashLeaf(new TextEncoder().encode(`{"index":${index}}`)), proof, root)).toBe(true);
        if (size > 1) expect(await verifyInclusion(index, size, leaves[(index + 1) % size]!, proof, root)).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses nonsense sizes and hashes of the wrong length without throwing', async () => {
    const leafHash = await hashLeaf(new Uint8Array());
    for (const [index, size] of [
      [-1, 1],
      [1, 1],
      [0, 0],
      [0.5, 2],
      [0, Number.MAX_SAFE_INTEGER + 2],
    ] as const) {
      expect(await verifyInclusion(index, size, leafHash, [], leafHash)).toBe(false);
    }
    expect(await verifyInclusion(0, 2, leafHash, [new Uint8Array(31)], leafHash)).toBe(false);
  });
});

describe('consistency proofs in the browser', () => {
  it('has the whole published set of consistency vectors, the additional cases with it', () => {
    expect(CONSISTENCY.length).toBeGreaterThan(90);
    expect(CONSISTENCY.some(([name]) => name.startsWith('additional/'))).toBe(true);
  });

  it.each(CONSISTENCY)('transparency-dev/merkle %s: the reference verdict', async (_path, v) => {
    const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, 'base64'));
    expect(await verifyConsistency(v.size1, v.size2, bytes(v.root1), bytes(v.root2), (v.proof ?? []).map(bytes)), v.desc).toBe(!v.wantErr);
  });

  it("accepts every proof the server's tree makes, and refuses it once any entry of the older tree differs", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 40 }), fc.nat(), async (size1, more, pick) => {
        const size2 = size1 + more;
        const leaves = Array.from({ length: size2 }, (_, i) => serverHashLeaf(Buffer.from(`{"index":${i}}`)));
        const root1 = rootFromLeafHashes(leaves.slice(0, size1));
        const root2 = rootFromLeafHashes(leaves);
        const proof = consistencyProof(leaves, size1, size2);
        expect(await verifyConsistency(size1, size2, root1, root2, proof)).toBe(true);
        // A history rewritten: one entry of the older tree changed, and the newer tree built on it.
        const rewritten = leaves.map((leaf, i) => (i === pick % size1 ? serverHashLeaf(Buffer.from('rewritten')) : leaf));
        const forged = rootFromLeafHashes(rewritten);
        expect(await verifyConsistency(size1, size2, root1, forged, consistencyProof(rewritten, size1, size2))).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('refuses nonsense sizes and hashes of the wrong length without throwing', async () => {
    const root = await hashLeaf(new Uint8Array());
    for (const [size1, size2] of [
      [0, 1],
      [2, 1],
      [-1, 3],
      [1.5, 3],
      [1, Number.MAX_SAFE_INTEGER + 2],
    ] as const) {
      expect(await verifyConsistency(size1, size2, root, root, [root])).toBe(false);
    }
    expect(await verifyConsistency(1, 2, root, root, [new Uint8Array(31)])).toBe(false);
    expect(await verifyConsistency(1, 2, new Uint8Array(31), root, [root])).toBe(false);
  });
});

describe('signed notes and checkpoints in the browser', () => {
  it('opens the Go reference note with its verifier key', async () => {
    const key = await parseVerifierKey(NOTE.verifier_key!);
    expect(await openNote(NOTE.note!, key)).toBe(NOTE.text);
  });

  it('a flipped signature byte is bad_signature; a note by another key is unknown_key', async () => {
    const key = await parseVerifierKey(NOTE.verifier_key!);
    const [text, signatures] = NOTE.note!.split('\n\n');
    const blob = signatures!.slice(signatures!.lastIndexOf(' ') + 1, -1);
    const bytes = Buffer.from(blob, 'base64');
    bytes[10]! ^= 1;
    await expectCheckError(openNote(`${text}\n\n${signatures!.replace(blob, bytes.toString('base64'))}`, key), 'bad_signature');
    await expectCheckError(openNote(NOTE.note!, await parseVerifierKey(NOTE.example_verifier_key!)), 'unknown_key');
  });

  it.each([
    ['no name', '+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['a short hash', 'PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['a hash of another name', 'PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['a key that is not base64', 'PeterNeumann+c74f20a3+not*base64'],
    ['a key of another algorithm', 'PeterNeumann+c74f20a3+AhpC2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
  ])('a verifier key with %s is malformed_key', async (_, text) => {
    await expectCheckError(parseVerifierKey(text), 'malformed_key');
  });

  it.each([
    ['no final newline', 'text\n\n— k AAAA'],
    ['no blank line', 'text\n— k AAAAAAA=\n'],
    ['a signature line without the dash', 'text\n\nk AAAAAAA=\n'],
  ])('a note with %s is malformed_note', async (_, note) => {
    await expectCheckError(openNote(note, await parseVerifierKey(NOTE.verifier_key!)), 'malformed_note');
  });

  it('reads a checkpoint the server signs, and refuses a malformed one', async () => {
    const signer = generateKeyPair();
    const root = rootFromLeafHashes([serverHashLeaf(Buffer.from('a'))]);
    const note = signNote(formatCheckpoint({ origin: 'ppn.example/ledger', size: 1, root }), 'ppn-ledger', signer.privateKey);
    const key = await parseVerifierKey(verifierKeyText('ppn-ledger', signer.privateKey));
    const checkpoint = parseCheckpoint(await openNote(note, key));
    expect(checkpoint).toEqual({ origin: 'ppn.example/ledger', size: 1, root: new Uint8Array(root) });
    for (const text of ['origin\n01\nAAAA\n', 'origin\n1\n\n', '\n1\nAAAA\n', 'origin\n-1\nAAAA\n']) {
      expect(() => parseCheckpoint(text)).toThrow(LedgerCheckError);
    }
  });
});
