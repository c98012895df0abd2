/**
 * Checks the whole ledger from its raw bytes (SPEC §8), for `service-fs verify` and for the server's
 * start-up check. One pass over the entries in index order, with memory for one page and O(log n)
 * hashes:
 *
 * - every leaf is recomputed from the stored entry line, every node from the recomputed leaves, and
 *   each is compared with the stored one, so the whole stored tree is shown to be the tree of the
 *   entries. A difference is blamed where it starts: at a leaf, or at a node whose children agree,
 *   and named by the first entry under it (so a changed entry is named by its own index, not by the
 *   first entry of every subtree above it);
 * - every checkpoint's signature is checked with the ledger key, its root against the root
 *   recomputed from the entries at its size, and each consecutive pair by a consistency proof read
 *   from the stored tree (RFC 9162 verification).
 *
 * The result names the problem at the lowest entry index, if there is one.
 */
import { PpnError } from '../errors.js';
import { parseCheckpoint } from '../ledger/checkpoint.js';
import { claimedIndex } from '../ledger/entry.js';
import { hashChildren, hashLeaf, verifyConsistency } from '../ledger/merkle.js';
import { openNote, type VerifierKey } from '../ledger/note.js';
import { readConsistencyProof } from '../store/ledger-tree.js';
import type { Db } from '../store/schema.js';
import type { Store } from '../store/store.js';

const PAGE = 5000;

export interface LedgerProblem {
  /** The first entry index the problem concerns. */
  index: number;
  what: string;
}

export interface LedgerCheck {
  /** Entries checked (indexes 0 to size-1). */
  size: number;
  checkpoints: number;
  /** Size of the latest checkpoint, or null when none has been signed. */
  latestCheckpoint: number | null;
  /** The problem at the lowest index, or null when everything holds. */
  problem: LedgerProblem | null;
}

interface CheckpointRoot {
  size: number;
  root: Buffer;
}

/** A perfect subtree at the right edge of what has been read: recomputed and stored hashes. */
interface Edge {
  level: number;
  /** Index of the subtree among those of its level. */
  index: number;
  recomputed: Buffer;
  /** Whether the stored hash equals the recomputed one. */
  agrees: boolean;
}

/** Stored node hashes by level and index. */
type StoredNodes = (level: number, index: number) => Buffer | undefined;

/** The stored nodes that leaves [start, end) complete. */
async function nodesCompletedBy(db: Db, start: number, end: number): Promise<StoredNodes> {
  const ranges: { level: number; low: number; high: number }[] = [];
  // Node (L, i) is completed by leaf (i+1)·2^L − 1, so i+1 runs over [⌈(start+1)/2^L⌉, ⌊end/2^L⌋].
  for (let level = 0, width = 1; width <= end; level++, width *= 2) {
    const low = Math.ceil((start + 1) / width) - 1;
    const high = Math.floor(end / width) - 1;
    if (low <= high) ranges.push({ level, low, high });
  }
  const rows = await db
    .selectFrom('ledger_nodes')
    .select(['level', 'idx', 'hash'])
    .where((eb) => eb.or(ranges.map((r) => eb.and([eb('level', '=', r.level), eb('idx', '>=', r.low), eb('idx', '<=', r.high)]))))
    .execute();
  // One array per level, from the low end of its range: no string key built and hashed per node.
  const levels = new Map(ranges.map((r) => [r.level, { low: r.low, hashes: new Array<Buffer | undefined>(r.high - r.low + 1) }]));
  for (const row of rows) {
    const level = levels.get(row.level)!;
    level.hashes[Number(row.idx) - level.low] = Buffer.from(row.hash, 'hex');
  }
  return (level, index) => {
    const found = levels.get(level);
    return found?.hashes[index - found.low];
  };
}

/** The root of the tree whose right edge is `edges` (RFC 6962 MTH, folded from the right). */
function rootOf(edges: readonly Edge[]): Buffer {
  let root = edges[edges.length - 1]!.recomputed;
  for (let i = edges.length - 2; i >= 0; i--) root = hashChildren(edges[i]!.recomputed, root);
  return root;
}

/**
 * Reads every checkpoint and checks its signature. Read before the entries, so that every checkpoint
 * seen was signed over entries that the pass will read.
 */
async function readCheckpoints(db: Db, key: VerifierKey, note: (p: LedgerProblem) => void): Promise<{ count: number; valid: CheckpointRoot[] }> {
  const rows = await db.selectFrom('ledger_checkpoints').select(['size', 'note']).orderBy('size').execute();
  const valid: CheckpointRoot[] = [];
  for (const row of rows) {
    const size = Number(row.size);
    try {
      const checkpoint = parseCheckpoint(openNote(row.note, key));
      if (checkpoint.origin !== key.name) throw new Error(`its origin is "${checkpoint.origin}", not "${key.name}"`);
      if (checkpoint.size !== size) throw new Error(`it says size ${checkpoint.size}`);
      valid.push({ size, root: checkpoint.root });
    } catch (error) {
      note({ index: Math.max(0, size - 1), what: `checkpoint at size ${size}: ${(error as Error).message}` });
    }
  }
  return { count: rows.length, valid };
}

/**
 * Runs the check. `key` is the ledger's verifier key; without one, checkpoints are not checked.
 * `progress` is told the number of entries checked after each page.
 */
export async function checkLedger(store: Store, key: VerifierKey | undefined, progress?: (checked: number) => void): Promise<LedgerCheck> {
  const db = store.db;
  const found: { problem: LedgerProblem | null } = { problem: null };
  const note = (p: LedgerProblem): void => {
    if (!found.problem || p.index < found.problem.index) found.problem = p;
  };
  const checkpoints = key ? await readCheckpoints(db, key, note) : { count: 0, valid: [] };
  const pending = [...checkpoints.valid];
  const matched: CheckpointRoot[] = [];

  const edges: Edge[] = [];
  let size = 0;
  pages: for (;;) {
    const rows = await db.selectFrom('ledger_entries').select(['idx', 'entry']).where('idx', '>=', size).orderBy('idx').limit(PAGE).execute();
    if (rows.length === 0) break;
    const stored = await nodesCompletedBy(db, size, size + rows.length);
    for (const row of rows) {
      const index = Number(row.idx);
      if (index !== size) {
        note({ index: size, what: `entry ${size} is missing (the next stored is ${index})` });
        break pages;
      }
      const claimed = claimedIndex(row.entry, index);
      if (claimed !== index) note({ index, what: `entry ${index} says it is entry ${String(claimed)}` });
      const leaf = hashLeaf(Buffer.from(row.entry));
      const agrees = stored(0, index)?.equals(leaf) ?? false;
      if (!agrees) note({ index, what: `entry ${index}'s bytes do not match its leaf hash in the tree` });
      edges.push({ level: 0, index, recomputed: leaf, agrees });
      // The perfect subtrees this leaf completes: recompute each, compare with the stored node.
      while (edges.length >= 2 && edges[edges.length - 2]!.level === edges[edges.length - 1]!.level) {
        const right = edges.pop()!;
        const left = edges.pop()!;
        const level = left.level + 1;
        const parentIndex = left.index / 2;
        const recomputed = hashChildren(left.recomputed, right.recomputed);
        const agrees = stored(level, parentIndex)?.equals(recomputed) ?? false;
        if (!agrees && left.agrees && right.agrees) {
          const first = parentIndex * 2 ** level;
          note({ index: first, what: `stored tree node ${level}/${parentIndex} is not the hash of its children (entries ${first}–${index})` });
        }
        edges.push({ level, index: parentIndex, recomputed, agrees });
      }
      size = index + 1;
      while (pending[0]?.size === size) {
        const checkpoint = pending.shift()!;
        if (rootOf(edges).equals(checkpoint.root)) matched.push(checkpoint);
        else note({ index: size - 1, what: `checkpoint at size ${size} does not match the root of the entries` });
      }
    }
    progress?.(size);
  }

  for (const checkpoint of pending) {
    note({ index: size, what: `checkpoint at size ${checkpoint.size} covers entries that are not stored (only ${size} are)` });
  }
  // Leaves beyond the last entry mean entries were removed from the end. One statement reads both
  // maxima, so entries appended meanwhile (by another server) raise both alike.
  const tails = await db
    .selectNoFrom((eb) => [
      eb.selectFrom('ledger_nodes').where('level', '=', 0).select((e) => e.fn.max('idx').as('m')).as('leaf'),
      eb.selectFrom('ledger_entries').select((e) => e.fn.max('idx').as('m')).as('entry'),
    ])
    .executeTakeFirstOrThrow();
  const lastLeaf = tails.leaf === null ? -1 : Number(tails.leaf);
  const lastEntry = tails.entry === null ? -1 : Number(tails.entry);
  if (lastLeaf > lastEntry) note({ index: lastEntry + 1, what: `the tree has leaves for ${lastLeaf + 1} entries but only ${lastEntry + 1} are stored` });

  // Roots that match the entries are consistent by construction; the stored tree must also prove it.
  for (let i = 1; i < matched.length && !found.problem; i++) {
    const [older, newer] = [matched[i - 1]!, matched[i]!];
    const proof = await readConsistencyProof(db, older.size, newer.size);
    if (!verifyConsistency(older.size, newer.size, older.root, newer.root, proof)) {
      note({ index: older.size, what: `checkpoints at sizes ${older.size} and ${newer.size} are not consistent` });
    }
  }
  return { size, checkpoints: checkpoints.count, latestCheckpoint: checkpoints.valid.at(-1)?.size ?? null, problem: found.problem };
}

/** The refusal every /v1 request and /readyz get while the ledger is not verified. */
export function ledgerRefusal(problem: LedgerProblem): PpnError {
  return new PpnError('ledger_unverified', `the ledger failed verification at index ${problem.index}: ${problem.what}; this server serves nothing until it is repaired (service-fs verify shows the same)`, {
    extensions: { bad_index: problem.index },
  });
}
