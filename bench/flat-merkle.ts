/**
 * The baseline for `service-fs verify`: the RFC 9162 Merkle root of the same lines read from a flat
 * file, one line per entry, with nothing else done (no parsing, no signatures, no database). A leaf
 * is SHA-256(0x00 ‖ line) and each of the n−1 interior nodes SHA-256(0x01 ‖ left ‖ right).
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { hashChildren, hashLeaf } from '../src/ledger/merkle.js';

/** Folds leaf hashes into the RFC 9162 root: exactly n−1 hashChildren calls for n leaves. */
export class RootBuilder {
  private readonly stack: { level: number; hash: Buffer }[] = [];
  nodes = 0;
  leaves = 0;
  add(leaf: Buffer): void {
    this.leaves++;
    let top = { level: 0, hash: leaf };
    while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.level === top.level) {
      const left = this.stack.pop()!;
      top = { level: top.level + 1, hash: hashChildren(left.hash, top.hash) };
      this.nodes++;
    }
    this.stack.push(top);
  }
  root(): Buffer {
    let root = this.stack[this.stack.length - 1]!.hash;
    for (let i = this.stack.length - 2; i >= 0; i--) {
      root = hashChildren(this.stack[i]!.hash, root);
      this.nodes++;
    }
    return root;
  }
}

/** Appends lines to a flat file, one per line (a stored entry line holds no newline). */
export function appendLines(fd: number, lines: string[]): void {
  if (lines.length > 0) writeSync(fd, `${lines.join('\n')}\n`);
}

const CHUNK = 4 * 2 ** 20;

/** Reads the flat file in large chunks (`chunk` bytes, 4 MiB unless given) and returns the Merkle root of its lines. */
export function flatFileRoot(file: string, chunkBytes = CHUNK): { root: Buffer; leaves: number; bytes: number } {
  const fd = openSync(file, 'r');
  const tree = new RootBuilder();
  let carry = Buffer.alloc(0);
  let bytes = 0;
  try {
    for (;;) {
      const chunk = Buffer.allocUnsafe(chunkBytes);
      const read = readSync(fd, chunk, 0, chunkBytes, null);
      if (read === 0) break;
      bytes += read;
      const data = carry.length > 0 ? Buffer.concat([carry, chunk.subarray(0, read)]) : chunk.subarray(0, read);
      let start = 0;
      for (let end = data.indexOf(10, start); end >= 0; end = data.indexOf(10, start)) {
        tree.add(hashLeaf(data.subarray(start, end)));
        start = end + 1;
      }
      carry = Buffer.from(data.subarray(start));
    }
  } finally {
    closeSync(fd);
  }
  if (carry.length > 0) tree.add(hashLeaf(carry));
  if (tree.leaves === 0) throw new Error(`${file} holds no lines`);
  return { root: tree.root(), leaves: tree.leaves, bytes };
}
