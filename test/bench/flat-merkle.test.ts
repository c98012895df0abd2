/**
 * The benchmark's baseline for `service-fs verify` (bench/flat-merkle.ts) must compute the same tree
 * the ledger does: the RFC 9162 root of the lines, whatever the sizes and however the file's chunks
 * split the lines.
 */
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { appendLines, flatFileRoot } from '../../bench/flat-merkle.js';
import { hashLeaf, rootFromLeafHashes } from '../../src/ledger/merkle.js';

const dir = mkdtempSync(join(tmpdir(), 'ppn-flat-merkle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the flat-file Merkle baseline', () => {
  it('gives the RFC 9162 root of the lines for any number of lines and any chunk size', () => {
    let n = 0;
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('\n')),
          { minLength: 1, maxLength: 70 },
        ),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 3 }),
        (lines, chunk, writes) => {
          const file = join(dir, `lines-${n++}.txt`);
          const fd = openSync(file, 'w');
          const per = Math.ceil(lines.length / writes);
          for (let i = 0; i < lines.length; i += per) appendLines(fd, lines.slice(i, i + per));
          closeSync(fd);
          const result = flatFileRoot(file, chunk);
          expect(result.leaves).toBe(lines.length);
          expect(result.root.equals(rootFromLeafHashes(lines.map((line) => hashLeaf(Buffer.from(line)))))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
