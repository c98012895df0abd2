/**
 * The baseline for `service-fs verify` (bench/startup.ts): the RFC 9162 root of the lines of a flat
 * file (one entry a line), with the product's hashing (src/ledger/merkle.ts): SHA-256(0x00‖line) per
 * leaf, SHA-256(0x01‖left‖right) per interior node, n−1 of them. Prints the size and the root.
 */
import { readFileSync } from 'node:fs';
import { hashChildren, hashLeaf } from '../src/ledger/merkle.js';

const bytes = readFileSync(process.argv[2]!);
const edge: { level: number; hash: Buffer }[] = [];
let size = 0;
for (let start = 0; start < bytes.length;) {
  const end = bytes.indexOf(10, start);
  let top = { level: 0, hash: hashLeaf(bytes.subarray(start, end)) };
  while (edge.length > 0 && edge[edge.length - 1]!.level === top.level) {
    const left = edge.pop()!;
    top = { level: top.level + 1, hash: hashChildren(left.hash, top.hash) };
  }
  edge.push(top);
  size++;
  start = end + 1;
}
let root = edge[edge.length - 1]!.hash;
for (let i = edge.length - 2; i >= 0; i--) root = hashChildren(edge[i]!.hash, root);
process.stdout.write(`${size} ${root.toString('hex')}\n`);
