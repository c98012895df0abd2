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
 *   from the stored tree (RFC 9162 verification);
 * - the ledger must extend the checkpoint the server remembers outside the database (ledger.state):
 *   at least as many entries, the same root at its size, and that checkpoint still stored; unless a
 *   LEDGER_ROLLED_BACK entry under a valid checkpoint names it (an operator accepted a restore).
 *
 * The result names the problem at the lowest entry index, if there is one. `checkExtension` is the
 * same pass over only the entries added since a tree head already verified, for the signer.
 */
import { sql } from 'kysely';
import { PpnError } from '../errors.js';
import { parseCheckpoint, type SignedTreeHead, type TreeHead } from '../ledger/checkpoint.js';
import { claimedIndex } from '../ledger/entry.js';
import { EMPTY_ROOT, HASH_BYTES, hashChildren, hashLeaf, verifyConsistency } from '../ledger/merkle.js';
import { openNote, type VerifierKey } from '../ledger/note.js';
import { edgeOf, ledgerEnds, readConsistencyProof } from '../store/ledger-tree.js';
import { selectArrays } from '../store/rows.js';
import type { Db } from '../store/schema.js';
import type { Store } from '../store/store.js';

const PAGE = 5000;
const CHECKPOINTS_PER_TURN = 32;

export interface LedgerProblem {
  /** The first entry index the problem concerns. */
  index: number;
  what: string;
}

export interface LedgerCheck {
  /** Entries checked (indexes 0 to size-1). */
  size: number;
  /** Their root, recomputed. */
  root: Buffer;
  checkpoints: number;
  /** Size of the latest checkpoint, or null when none has been signed. */
  latestCheckpoint: number | null;
  /** The latest checkpoint whose signature and root hold: what a server remembers. */
  latest: SignedTreeHead | null;
  /**
   * Set when the stored ledger holds together but does not extend the remembered checkpoint (and
   * no signed LEDGER_ROLLED_BACK accepts that): what `ledger accept-rollback` accepts. It is also
   * the problem.
   */
  rollback: LedgerProblem | null;
  /**
   * The index of the signed LEDGER_ROLLED_BACK entry that accepted a ledger not extending the
   * remembered checkpoint, or null.
   */
  acceptedRollback: number | null;
  /** The problem at the lowest index, or null when everything holds. */
  problem: LedgerProblem | null;
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

/** The stored nodes that a page of leaves completes, to compare with the recomputed ones. */
interface StoredNodes {
  /**
   * Whether the stored node at (level, index) is `hash`: true or false, undefined when no node is
   * stored there, or null when it differs in a level the database joined without sorting (see
   * readWholeLevel), which only `compareInOrder` can tell for sure.
   */
  compare(level: number, index: number, hash: Buffer): boolean | null | undefined;
  /** The same, after reading the node's level again in index order. */
  compareInOrder(level: number, index: number, hash: Buffer): Promise<boolean | undefined>;
}

/** The stored nodes of one level in a range of indexes: their hashes side by side, 32 bytes each. */
interface StoredLevel {
  low: number;
  hashes: Buffer;
  present: Uint8Array;
  /** Whether the hashes were read in index order for sure. */
  inOrder: boolean;
}

/** The stored nodes that leaves [start, end) complete. */
async function nodesCompletedBy(store: Store, start: number, end: number): Promise<StoredNodes> {
  // The hex of every node is decoded into one buffer per level, not a Buffer per node: a check reads
  // two nodes per entry, and their allocation was a tenth of `service-fs verify`'s time.
  const levels: (StoredLevel | undefined)[] = [];
  // Node (L, i) is completed by leaf (i+1)·2^L − 1, so i+1 runs over [⌈(start+1)/2^L⌉, ⌊end/2^L⌋].
  for (let level = 0, width = 1; width <= end; level++, width *= 2) {
    const low = Math.ceil((start + 1) / width) - 1;
    const high = Math.floor(end / width) - 1;
    if (low > high) continue;
    const stored: StoredLevel = {
      low,
      hashes: Buffer.alloc((high - low + 1) * HASH_BYTES),
      present: new Uint8Array(high - low + 1),
      inOrder: store.dialect === 'postgres',
    };
    levels[level] = stored;
    await readLevel(store, level, stored);
  }
  const compare = (level: number, index: number, hash: Buffer): boolean | null | undefined => {
    const found = levels[level];
    const slot = found ? index - found.low : -1;
    if (!found || slot < 0 || slot >= found.present.length || found.present[slot] === 0) return undefined;
    const same = found.present[slot] === 1 && hash.compare(found.hashes, slot * HASH_BYTES, (slot + 1) * HASH_BYTES) === 0;
    return same || found.inOrder ? same : null;
  };
  return {
    compare,
    async compareInOrder(level, index, hash) {
      const found = levels[level]!;
      found.inOrder = true;
      await readLevel(store, level, found);
      return compare(level, index, hash) as boolean | undefined;
    },
  };
}

/** Reads the nodes of `level` in `stored`'s range into it: the whole level at once, or a row each. */
async function readLevel(store: Store, level: number, stored: StoredLevel): Promise<void> {
  stored.present.fill(0);
  if (await readWholeLevel(store, level, stored)) return;
  const high = stored.low + stored.present.length - 1;
  const rows = await selectArrays(
    store.db,
    store.dialect,
    store.db.selectFrom('ledger_nodes').select(['idx', 'hash']).where('level', '=', level).where('idx', '>=', stored.low).where('idx', '<=', high).compile(),
  );
  for (const [idx, hash] of rows as [number, string][]) {
    const slot = Number(idx) - stored.low;
    // A stored hash that is not 64 hex digits is not the hash of anything: stored, but it differs.
    const decoded = hash.length === 2 * HASH_BYTES && stored.hashes.write(hash, slot * HASH_BYTES, HASH_BYTES, 'hex') === HASH_BYTES;
    stored.present[slot] = decoded ? 1 : 2;
  }
  stored.inOrder = true;
}

/**
 * Reads the nodes of `level` in `stored`'s range as one string of their hex, joined by the
 * database, into `stored`: one row for the level instead of one a node. True when every node is
 * there and 64 hex digits; otherwise nothing is marked and the caller reads them a row each, to
 * tell which one is missing or malformed.
 *
 * In index order for sure when `stored.inOrder` (`string_agg(… order by idx)`, which SQLite sorts
 * in a temporary b-tree even though the key already gives that order). Otherwise, on SQLite, joined
 * from a subquery that walks the key in order, which SQLite feeds to the aggregate in that order
 * without sorting (a third of the level's read time at 1,000,000 entries) but does not promise to:
 * so a node that then differs is only a suspicion, and is compared again in a read in order.
 */
async function readWholeLevel(store: Store, level: number, stored: StoredLevel): Promise<boolean> {
  const count = stored.present.length;
  const range = store.db
    .selectFrom('ledger_nodes')
    .where('level', '=', level)
    .where('idx', '>=', stored.low)
    .where('idx', '<', stored.low + count);
  // The count and the shortest and longest hash, then the hashes joined.
  const shape = [sql<number>`count(*)`.as('count'), sql<number>`min(length(hash))`.as('shortest'), sql<number>`max(length(hash))`.as('longest')];
  const query = stored.inOrder
    ? range.select([...shape, sql<string>`string_agg(hash, '' order by idx)`.as('joined')])
    : store.db.selectFrom(range.select('hash').orderBy('idx').as('level_nodes')).select([...shape, sql<string>`string_agg(hash, '')`.as('joined')]);
  const [row] = await selectArrays(store.db, store.dialect, query.compile());
  const [found, shortest, longest, joined] = row as [number, number, number, string | null];
  // (level, idx) is the key, so `count` rows in a range of `count` indexes are all of them.
  if (Number(found) !== count || Number(shortest) !== 2 * HASH_BYTES || Number(longest) !== 2 * HASH_BYTES || joined === null) return false;
  if (stored.hashes.write(joined, 0, 'hex') !== count * HASH_BYTES) return false;
  stored.present.fill(1);
  return true;
}

/** The root of the tree whose right edge is `edges` (RFC 6962 MTH, folded from the right). */
function rootOf(edges: readonly Edge[]): Buffer {
  if (edges.length === 0) return EMPTY_ROOT;
  let root = edges[edges.length - 1]!.recomputed;
  for (let i = edges.length - 2; i >= 0; i--) root = hashChildren(edges[i]!.recomputed, root);
  return root;
}

/**
 * Reads every checkpoint and checks its signature. Read before the entries, so that every checkpoint
 * seen was signed over entries that the pass will read.
 */
async function readCheckpoints(
  db: Db,
  key: VerifierKey,
  note: (p: LedgerProblem) => void,
  sizes: { from: number; to: number } = { from: 0, to: Number.MAX_SAFE_INTEGER },
): Promise<{ count: number; valid: SignedTreeHead[] }> {
  const rows = await db.selectFrom('ledger_checkpoints').select(['size', 'note']).where('size', '>=', sizes.from).where('size', '<=', sizes.to).orderBy('size').execute();
  const valid: SignedTreeHead[] = [];
  for (const [i, row] of rows.entries()) {
    // A signature check costs about 60 µs and a day of steady writes signs up to 86,400 checkpoints:
    // let the event loop answer requests between every CHECKPOINTS_PER_TURN of them.
    if (i > 0 && i % CHECKPOINTS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
    const size = Number(row.size);
    try {
      const checkpoint = parseCheckpoint(openNote(row.note, key));
      if (checkpoint.origin !== key.name) throw new Error(`its origin is "${checkpoint.origin}", not "${key.name}"`);
      if (checkpoint.size !== size) throw new Error(`it says size ${checkpoint.size}`);
      valid.push({ size, root: checkpoint.root, note: row.note });
    } catch (error) {
      note({ index: Math.max(0, size - 1), what: `checkpoint at size ${size}: ${(error as Error).message}` });
    }
  }
  return { count: rows.length, valid };
}

/** A pass over the entries: the right edge of the tree read so far, and where problems go. */
interface Pass {
  store: Store;
  edges: Edge[];
  /** Entries read so far (indexes 0 to size-1). */
  size: number;
  /**
   * Entries below this must have their leaf in the tree. Past it an entry may be sequenced but not
   * yet integrated (src/store/ledger-tree.ts): without a leaf it is not a problem, but a leaf it has
   * must match it.
   */
  integrated: number;
  note: (p: LedgerProblem) => void;
  /** Set once a problem is noted. */
  failed?: () => boolean;
}

/** How a pass reads its pages: what it reports, how fast it goes, when it stops early. */
export interface Pacing {
  /** Told the size reached after each page. */
  progress?: (size: number) => void;
  /** Awaited after each page: the background scrub sleeps here to keep to its rate. */
  pace?: (entries: number) => Promise<void>;
  /** Stops the pass after the current page (the server is closing). */
  signal?: AbortSignal;
  /** Stops after the page where the first problem was noted (the scrub raises it at once). */
  stopAtFirstProblem?: boolean;
  /**
   * Entries read and hashed per page (default 5,000). A page is one synchronous stretch on SQLite: a
   * check in the background of a serving process (the scrub) reads small pages, so no request waits
   * long behind it.
   */
  pageSize?: number;
}

/**
 * Reads entries from `pass.size` up to `end` (exclusive; Infinity for all that are stored) in index
 * order, recomputing each leaf and every perfect subtree it completes and comparing them with the
 * stored tree. `reached` is called with the size after each entry. Stops at the first missing entry.
 */
async function readEntriesInto(pass: Pass, end: number, reached: (size: number) => void, pacing: Pacing = {}): Promise<void> {
  const { store, edges, note } = pass;
  while (pass.size < end) {
    if (pacing.signal?.aborted || (pacing.stopAtFirstProblem && pass.failed?.())) return;
    const rows = (await selectArrays(
      store.db,
      store.dialect,
      store.db
        .selectFrom('ledger_entries')
        .select(['idx', 'entry'])
        .where('idx', '>=', pass.size)
        .orderBy('idx')
        .limit(Math.min(pacing.pageSize ?? PAGE, end - pass.size))
        .compile(),
    )) as [number, string][];
    if (rows.length === 0) return;
    const stored = await nodesCompletedBy(store, pass.size, pass.size + rows.length);
    for (const [idx, entry] of rows) {
      const index = Number(idx);
      if (index !== pass.size) {
        note({ index: pass.size, what: `entry ${pass.size} is missing (the next stored is ${index})` });
        return;
      }
      const claimed = claimedIndex(entry, index);
      if (claimed !== index) note({ index, what: `entry ${index} says it is entry ${String(claimed)}` });
      const leaf = hashLeaf(entry);
      let storedLeaf = stored.compare(0, index, leaf);
      if (storedLeaf === null) storedLeaf = await stored.compareInOrder(0, index, leaf);
      const agrees = storedLeaf ?? false;
      if (storedLeaf === undefined) {
        if (index < pass.integrated) note({ index, what: `the tree has no leaf for entry ${index}` });
      } else if (!agrees) note({ index, what: `entry ${index}'s bytes do not match its leaf hash in the tree` });
      edges.push({ level: 0, index, recomputed: leaf, agrees });
      // The perfect subtrees this leaf completes: recompute each, compare with the stored node.
      while (edges.length >= 2 && edges[edges.length - 2]!.level === edges[edges.length - 1]!.level) {
        const right = edges.pop()!;
        const left = edges.pop()!;
        const level = left.level + 1;
        const parentIndex = left.index / 2;
        const recomputed = hashChildren(left.recomputed, right.recomputed);
        let storedNode = stored.compare(level, parentIndex, recomputed);
        if (storedNode === null) storedNode = await stored.compareInOrder(level, parentIndex, recomputed);
        const agrees = storedNode ?? false;
        if (!agrees && left.agrees && right.agrees) {
          const first = parentIndex * 2 ** level;
          note({ index: first, what: `stored tree node ${level}/${parentIndex} is not the hash of its children (entries ${first}–${index})` });
        }
        edges.push({ level, index: parentIndex, recomputed, agrees });
      }
      pass.size = index + 1;
      reached(pass.size);
    }
    pacing.progress?.(pass.size);
    await pacing.pace?.(rows.length);
    // SQLite answers synchronously, so without this a pass would hold the event loop to its end:
    // a server checking in the background could neither listen nor answer meanwhile.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export interface CheckOptions extends Pacing {
  /** The checkpoint this server remembers (its ledger.state): the ledger must extend it. */
  remembered?: SignedTreeHead | null;
  /**
   * Check entries [0, end) and the checkpoints up to `end` only (the server's checks: entries
   * appended meanwhile are the signer's to check). Default: every stored entry.
   */
  end?: number;
}

/** Entries stored: one past the highest index (the server's checks read up to it). */
export async function storedEntryCount(db: Db): Promise<number> {
  const row = await db
    .selectFrom('ledger_entries')
    .select((eb) => eb.fn.max('idx').as('last'))
    .executeTakeFirst();
  return row?.last === null || row?.last === undefined ? 0 : Number(row.last) + 1;
}

/** Where a pass starts: the empty tree, or a verified head with its stored right edge. */
interface Start {
  size: number;
  edges: Edge[];
}

/**
 * Runs the check. `key` is the ledger's verifier key; without one, checkpoints are not checked.
 */
export function checkLedger(store: Store, key: VerifierKey | undefined, options: CheckOptions = {}): Promise<LedgerCheck> {
  return checkFrom(store, key, { size: 0, edges: [] }, options);
}

/**
 * The server's start-up check (docs/design/ledger.md): when the stored tree at the size of the
 * checkpoint this server remembers still folds to that checkpoint's root (O(log n) nodes read), and
 * that checkpoint is still stored as remembered, only the entries added since are checked, as the
 * full check checks them, with the checkpoints signed since; the history before it is the background
 * scrub's. Otherwise (a rollback, a rewritten or deleted tree or checkpoint), the whole ledger is
 * checked, so the problem is named exactly as `service-fs verify` names it. `from` says which.
 */
export async function checkLedgerSince(
  store: Store,
  key: VerifierKey,
  remembered: SignedTreeHead,
  options: Omit<Pacing, 'progress'> & { end: number; progress?: (checked: number, total: number) => void },
): Promise<LedgerCheck & { from: number }> {
  const db = store.db;
  const stored = await db.selectFrom('ledger_checkpoints').select('note').where('size', '=', remembered.size).executeTakeFirst();
  const edges = remembered.size <= options.end && stored?.note === remembered.note ? await storedEdges(db, remembered, () => {}) : null;
  const from = edges ? remembered.size : 0;
  const progress = (size: number) => options.progress?.(size - from, Math.max(0, options.end - from));
  progress(from);
  const check = { ...options, remembered, progress };
  const result = edges ? await checkFrom(store, key, { size: from, edges }, check) : await checkLedger(store, key, check);
  return { ...result, from };
}

async function checkFrom(store: Store, key: VerifierKey | undefined, start: Start, options: CheckOptions): Promise<LedgerCheck> {
  const db = store.db;
  const found: { problem: LedgerProblem | null } = { problem: null };
  const note = (p: LedgerProblem): void => {
    if (!found.problem || p.index < found.problem.index) found.problem = p;
  };
  const remembered = options.remembered ?? null;
  const end = options.end ?? Infinity;
  const sizes = { from: start.size, to: Math.min(end, Number.MAX_SAFE_INTEGER) };
  const checkpoints = key ? await readCheckpoints(db, key, note, sizes) : { count: 0, valid: [] };
  // Entries past the stored tree may be sequenced but not integrated yet, unless a checkpoint covers
  // them: one is signed only over integrated entries. The tree is read after the checkpoints.
  const integrated = Math.max((await ledgerEnds(db)).lastLeaf + 1, checkpoints.valid.at(-1)?.size ?? 0, options.remembered?.size ?? 0);
  const pending = [...checkpoints.valid];
  const matched: SignedTreeHead[] = [];
  let rememberedRoot: Buffer | null = null;

  const pass: Pass = { store, edges: start.edges, size: start.size, integrated, note, failed: () => found.problem !== null };
  const reach = (size: number): void => {
    if (remembered?.size === size) rememberedRoot = rootOf(pass.edges);
    while (pending[0]?.size === size) {
      const checkpoint = pending.shift()!;
      if (rootOf(pass.edges).equals(checkpoint.root)) matched.push(checkpoint);
      else note({ index: size - 1, what: `checkpoint at size ${size} does not match the root of the entries` });
    }
  };
  reach(start.size);
  await readEntriesInto(pass, end, reach, options);
  const size = pass.size;
  if (options.signal?.aborted) return { ...emptyResult(size, rootOf(pass.edges)), problem: found.problem };
  if (end !== Infinity && size < end && !found.problem) note({ index: size, what: `entry ${size} is missing, though the tree has ${end} leaves` });

  for (const checkpoint of pending) {
    note({ index: size, what: `checkpoint at size ${checkpoint.size} covers entries that are not stored (only ${size} are)` });
  }
  // Leaves beyond the last entry mean entries were removed from the end.
  const { lastLeaf, lastEntry } = await ledgerEnds(db);
  if (lastLeaf > lastEntry) note({ index: lastEntry + 1, what: `the tree has leaves for ${lastLeaf + 1} entries but only ${lastEntry + 1} are stored` });
  // Every change writes an entry, so an empty ledger beside tenants or tokens has been cut back.
  if (size === 0) {
    const rows = await db
      .selectNoFrom((eb) => [
        eb
          .selectFrom('tenants')
          .select((e) => e.fn.countAll().as('n'))
          .as('tenants'),
        eb
          .selectFrom('tokens')
          .select((e) => e.fn.countAll().as('n'))
          .as('tokens'),
        // In the same statement (one snapshot): another server may have committed a token and its
        // entry since the entries were read, as a replica starting beside this one does.
        eb.exists(eb.selectFrom('ledger_entries').select('idx')).as('entries'),
      ])
      .executeTakeFirstOrThrow();
    if (!rows.entries && Number(rows.tenants) + Number(rows.tokens) > 0) {
      note({
        index: 0,
        what: `the ledger is empty but the store holds ${Number(rows.tenants)} tenants and ${Number(rows.tokens)} tokens, whose creation it should record`,
      });
    }
  }

  // Roots that match the entries are consistent by construction; the stored tree must also prove it.
  for (let i = 1; i < matched.length && !found.problem; i++) {
    const [older, newer] = [matched[i - 1]!, matched[i]!];
    const proof = await readConsistencyProof(db, older.size, newer.size);
    if (!verifyConsistency(older.size, newer.size, older.root, newer.root, proof)) {
      note({ index: older.size, what: `checkpoints at sizes ${older.size} and ${newer.size} are not consistent` });
    }
  }

  const latest = matched.at(-1) ?? null;
  let rollback: LedgerProblem | null = null;
  let acceptedRollback: number | null = null;
  if (remembered && !found.problem) {
    rollback = notExtending(remembered, size, rememberedRoot, checkpoints.valid);
    if (rollback) acceptedRollback = await findAcceptedRollback(db, remembered, latest);
    if (acceptedRollback !== null) rollback = null;
    if (rollback) note(rollback);
  }
  return {
    size,
    root: rootOf(pass.edges),
    checkpoints: checkpoints.count,
    latestCheckpoint: checkpoints.valid.at(-1)?.size ?? null,
    latest,
    rollback,
    acceptedRollback,
    problem: found.problem,
  };
}

/** What a check stopped before its end reports: how far it got, nothing about checkpoints. */
function emptyResult(size: number, root: Buffer): LedgerCheck {
  return { size, root, checkpoints: 0, latestCheckpoint: null, latest: null, rollback: null, acceptedRollback: null, problem: null };
}

const ACCEPT_HINT = 'if an older copy of the database was restored on purpose, accept it with "service-vm-tenant ledger accept-rollback"';

/**
 * Why the stored ledger does not extend the remembered checkpoint, or null when it does: at least
 * as many entries, the same root at its size, and the checkpoint itself still stored (every
 * checkpoint is kept, SPEC §8, so a missing one was deleted).
 */
function notExtending(remembered: TreeHead, size: number, root: Buffer | null, stored: readonly TreeHead[]): LedgerProblem | null {
  const had = `this server remembers a checkpoint at size ${remembered.size} with root ${remembered.root.toString('hex')} (ledger.state)`;
  if (size < remembered.size) {
    return { index: size, what: `the ledger holds ${size} entries, fewer than ${had}: it was rolled back; ${ACCEPT_HINT}` };
  }
  if (!root?.equals(remembered.root)) {
    return { index: remembered.size - 1, what: `the ledger does not extend what ${had}: its root at that size is ${root?.toString('hex')}; ${ACCEPT_HINT}` };
  }
  if (!stored.some((c) => c.size === remembered.size)) {
    return { index: remembered.size - 1, what: `${had}, but that checkpoint is not stored: checkpoints were deleted; ${ACCEPT_HINT}` };
  }
  return null;
}

/**
 * The index of a LEDGER_ROLLED_BACK entry that names exactly `remembered` as what it rolled back
 * from, and that the latest valid checkpoint covers, or null. A database writer without the ledger
 * key cannot make one: the entry is only accepted under a checkpoint signed with that key.
 */
async function findAcceptedRollback(db: Db, remembered: TreeHead, latest: SignedTreeHead | null): Promise<number | null> {
  if (!latest) return null;
  const rows = await db
    .selectFrom('ledger_entries')
    .select(['idx', 'entry'])
    .where('event_type', '=', 'LEDGER_ROLLED_BACK')
    .where('idx', '<', latest.size)
    .orderBy('idx', 'desc')
    .execute();
  for (const row of rows) {
    const data = (JSON.parse(row.entry) as { data?: { from_size?: unknown; from_root?: unknown } }).data;
    if (data?.from_size === remembered.size && data.from_root === remembered.root.toString('hex')) return Number(row.idx);
  }
  return null;
}

/**
 * Checks that the stored ledger extends `from` (a tree head this server verified before) up to
 * `to` entries, reading only what was added since: the stored perfect subtrees at `from.size` must
 * fold to its root (O(log n) nodes), and entries [from.size, to) are checked against the stored tree
 * as in the full check. Returns the head at `to`, recomputed, or the problem at the lowest index.
 */
export async function checkExtension(store: Store, from: TreeHead, to: number): Promise<{ head: TreeHead; problem: LedgerProblem | null }> {
  let problem: LedgerProblem | null = null;
  const note = (p: LedgerProblem): void => {
    if (!problem || p.index < problem.index) problem = p;
  };
  const edges = await storedEdges(store.db, from, note);
  if (!edges) return { head: from, problem };
  const pass: Pass = { store, edges, size: from.size, integrated: to, note };
  await readEntriesInto(pass, to, () => {});
  if (pass.size < to && !problem) note({ index: pass.size, what: `entry ${pass.size} is missing, though the tree has ${to} leaves` });
  return { head: { size: pass.size, root: rootOf(edges) }, problem };
}

/** The stored perfect subtrees of a tree of `head.size` leaves, when they fold to `head.root`. */
async function storedEdges(db: Db, head: TreeHead, note: (p: LedgerProblem) => void): Promise<Edge[] | null> {
  const ids = edgeOf(head.size);
  const rows =
    ids.length === 0
      ? []
      : await db
          .selectFrom('ledger_nodes')
          .select(['level', 'idx', 'hash'])
          .where((eb) => eb.or(ids.map((id) => eb.and([eb('level', '=', id.level), eb('idx', '=', id.index)]))))
          .execute();
  const edges: Edge[] = [];
  for (const id of ids) {
    const row = rows.find((r) => r.level === id.level && Number(r.idx) === id.index);
    if (!row) {
      note({ index: id.index * 2 ** id.level, what: `stored tree node ${id.level}/${id.index} is missing` });
      return null;
    }
    edges.push({ level: id.level, index: id.index, recomputed: Buffer.from(row.hash, 'hex'), agrees: true });
  }
  if (!rootOf(edges).equals(head.root)) {
    note({ index: Math.max(0, head.size - 1), what: `the stored tree at size ${head.size} no longer has the root this server verified (${head.root.toString('hex')})` });
    return null;
  }
  return edges;
}

/** The refusal every /v1 request and /readyz get while the ledger is not verified. */
export function ledgerRefusal(problem: LedgerProblem): PpnError {
  return new PpnError(
    'ledger_unverified',
    `the ledger failed verification at index ${problem.index}: ${problem.what}; this server serves nothing until it is repaired (service-fs verify shows the same)`,
    {
      extensions: { bad_index: problem.index },
    },
  );
}
