/**
 * `service-fs verify`: checks the whole ledger of a data directory from its raw bytes. Every leaf is
 * recomputed from the stored entry line and every stored tree node from its children; every
 * checkpoint's signature is checked with the ledger key, its root against the recomputed tree at
 * its size, and each consistent with the one before it (RFC 9162 proof, verified). Exits non-zero
 * naming the first bad entry index (SPEC §8).
 */
import { parseCheckpoint } from '../ledger/checkpoint.js';
import { hashChildren, hashLeaf, verifyConsistency } from '../ledger/merkle.js';
import { openNote } from '../ledger/note.js';
import { readLedgerVerifierKey } from '../config/data-dir.js';
import { treeConsistencyProof, treeRoot } from '../ledger/tree.js';
import type { Store } from '../store/store.js';
import { CliError, openExistingStore } from './common.js';

const PAGE = 5000;

interface Problem {
  /** The first entry index the problem concerns. */
  index: number;
  what: string;
}

/** Keeps the problem at the lowest entry index: the one verify reports. */
class EarliestProblem {
  value: Problem | null = null;
  note = (problem: Problem): void => {
    if (!this.value || problem.index < this.value.index) this.value = problem;
  };
}

/** Recomputes the tree from the entry lines, page by page, comparing with the stored nodes; returns the size. */
async function checkTree(
  store: Store,
  stored: ReadonlyMap<string, Buffer>,
  nodes: Map<string, Buffer>,
  { note }: EarliestProblem,
): Promise<number> {
  let expected = 0;
  for (;;) {
    const rows = await store.db.selectFrom('ledger_entries').select(['idx', 'entry']).where('idx', '>=', expected).orderBy('idx').limit(PAGE).execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      const index = Number(row.idx);
      if (index !== expected) {
        note({ index: expected, what: `entry ${expected} is missing (the next stored is ${index})` });
        return expected;
      }
      let entry: { index?: unknown };
      try {
        entry = JSON.parse(row.entry) as { index?: unknown };
      } catch {
        note({ index, what: `entry ${index} is not JSON` });
        entry = {};
      }
      if (entry.index !== index) note({ index, what: `entry ${index} says it is entry ${String(entry.index)}` });
      const leaf = hashLeaf(Buffer.from(row.entry));
      if (!stored.get(`0/${index}`)?.equals(leaf)) note({ index, what: `entry ${index}'s bytes do not match its leaf hash in the tree` });
      nodes.set(`0/${index}`, leaf);
      // Each perfect subtree this leaf completes: recompute it from the entries, and check that the
      // stored node is the hash of its stored children (a changed entry shows up at its own index).
      for (let level = 0, i = index; i % 2 === 1; level++, i = Math.floor(i / 2)) {
        const key = `${level + 1}/${Math.floor(i / 2)}`;
        nodes.set(key, hashChildren(nodes.get(`${level}/${i - 1}`)!, nodes.get(`${level}/${i}`)!));
        const [left, right, parent] = [stored.get(`${level}/${i - 1}`), stored.get(`${level}/${i}`), stored.get(key)];
        if (!left || !right || !parent || !hashChildren(left, right).equals(parent)) {
          const first = Math.floor(i / 2) * 2 ** (level + 1);
          note({ index: first, what: `stored tree node ${key} is not the hash of its children (entries ${first}–${index})` });
        }
      }
      expected = index + 1;
    }
  }
  return expected;
}

export async function verifyLedger(dataDir: string, databaseUrl: string | undefined): Promise<void> {
  const store = openExistingStore(dataDir, databaseUrl);
  try {
    const key = readLedgerVerifierKey(dataDir);
    const stored = new Map<string, Buffer>();
    for (const row of await store.db.selectFrom('ledger_nodes').select(['level', 'idx', 'hash']).execute()) {
      stored.set(`${row.level}/${Number(row.idx)}`, Buffer.from(row.hash, 'hex'));
    }
    const recomputed = new Map<string, Buffer>();
    const earliest = new EarliestProblem();
    const { note } = earliest;
    const size = await checkTree(store, stored, recomputed, earliest);
    // Checkpoints are checked against the tree recomputed from the entries, not the stored one.
    const node = (level: number, index: number) => recomputed.get(`${level}/${index}`)!;
    let previous: { size: number; root: Buffer } | null = null;
    const checkpoints = await store.db.selectFrom('ledger_checkpoints').select(['size', 'note']).orderBy('size').execute();
    for (const row of checkpoints) {
      let checkpoint;
      try {
        checkpoint = parseCheckpoint(openNote(row.note, key));
      } catch (error) {
        note({ index: Math.max(0, Number(row.size) - 1), what: `checkpoint at size ${row.size}: ${(error as Error).message}` });
        continue;
      }
      if (checkpoint.size > size) {
        note({ index: size, what: `checkpoint at size ${checkpoint.size} covers entries that are not stored (only ${size} are)` });
        continue;
      }
      if (!treeRoot(checkpoint.size, node).equals(checkpoint.root)) {
        note({ index: checkpoint.size - 1, what: `checkpoint at size ${checkpoint.size} does not match the entries' root` });
      } else if (previous && !verifyConsistency(previous.size, checkpoint.size, previous.root, checkpoint.root, treeConsistencyProof(previous.size, checkpoint.size, node))) {
        note({ index: previous.size, what: `checkpoints at sizes ${previous.size} and ${checkpoint.size} are not consistent` });
      }
      previous = { size: checkpoint.size, root: checkpoint.root };
    }
    const first = earliest.value;
    if (first) throw new CliError(`ledger verification failed at index ${first.index}: ${first.what}`);
    const latest = checkpoints.at(-1);
    process.stdout.write(`ledger verified: ${size} entries, ${checkpoints.length} checkpoints${latest ? `, latest at size ${latest.size}` : ''}\n`);
  } finally {
    await store.close();
  }
}
