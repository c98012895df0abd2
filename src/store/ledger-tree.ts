/**
 * The ledger's Merkle tree in the store: one row per perfect subtree (src/ledger/tree.ts). Entries
 * are sequenced by the requests that write them (store/ledger.ts#appendEntry) and integrated here
 * later, in batches, by the leader (Tessera's split): the tree covers a prefix of the entries, and
 * entries past it are sequenced but not yet integrated. Every read of roots and proofs lists the
 * nodes it needs first and fetches them in one query.
 */
import { sql } from 'kysely';
import { hashLeaf } from '../ledger/merkle.js';
import { appendNodes, nodesRead, treeConsistencyProof, treeInclusionProof, treeRoot, type NodeId, type NodeReader, type StoredNode } from '../ledger/tree.js';
import type { Db } from './schema.js';
import { inTransaction, type Store } from './store.js';

/** Key of the PostgreSQL advisory lock that lets one integrator at a time grow the tree ("ppni"). */
const INTEGRATION_LOCK_KEY = 0x70706e69;
/** Rows per insert statement: 3 parameters each stays far below either store's parameter limit. */
const INSERT_CHUNK = 2000;

/** Thrown when a node the tree needs is missing: the stored tree does not cover its entries. */
export class MissingNodeError extends Error {
  constructor(
    readonly level: number,
    readonly index: number,
  ) {
    super(`ledger tree node ${level}/${index} is missing`);
  }
}

async function readNodes(db: Db, ids: readonly NodeId[]): Promise<NodeReader> {
  const found = new Map<string, Buffer>();
  if (ids.length > 0) {
    const rows = await db
      .selectFrom('ledger_nodes')
      .select(['level', 'idx', 'hash'])
      .where((eb) => eb.or(ids.map((id) => eb.and([eb('level', '=', id.level), eb('idx', '=', id.index)]))))
      .execute();
    for (const row of rows) found.set(`${row.level}/${Number(row.idx)}`, Buffer.from(row.hash, 'hex'));
  }
  return (level, index) => {
    const hash = found.get(`${level}/${index}`);
    if (!hash) throw new MissingNodeError(level, index);
    return hash;
  };
}

/** The perfect subtrees that make up a tree of `size` leaves, largest first: its right edge. */
export function edgeOf(size: number): NodeId[] {
  const ids: NodeId[] = [];
  for (let level = 52, first = 0; level >= 0; level--) {
    const width = 2 ** level;
    if (size - first >= width) {
      ids.push({ level, index: first / width });
      first += width;
    }
  }
  return ids;
}

/**
 * Integrates up to `limit` entries past the stored tree, in one transaction: their leaves and every
 * perfect subtree they complete, built on the stored right edge. Stops before a missing index, so
 * the tree only ever covers a gapless prefix. Integrators take turns (the PostgreSQL advisory lock;
 * SQLite has one writer), and the ledger's own lock is not taken, so requests keep sequencing
 * meanwhile. Returns how many leaves it added. Throws MissingNodeError when the right edge is gone.
 */
export async function integrateBatch(store: Store, limit: number): Promise<number> {
  return inTransaction(store, async (trx) => {
    if (store.dialect === 'postgres') await sql`select pg_advisory_xact_lock(${INTEGRATION_LOCK_KEY})`.execute(trx);
    const size = await storedTreeSize(trx);
    const rows = await trx.selectFrom('ledger_entries').select(['idx', 'entry']).where('idx', '>=', size).orderBy('idx').limit(limit).execute();
    const nodes = new Map<string, Buffer>();
    const edge = await readNodes(trx, rows.length > 0 ? edgeOf(size) : []);
    const node: NodeReader = (level, index) => nodes.get(`${level}/${index}`) ?? edge(level, index);
    const added: StoredNode[] = [];
    for (const [offset, row] of rows.entries()) {
      const index = size + offset;
      if (Number(row.idx) !== index) break;
      for (const n of appendNodes(index, hashLeaf(Buffer.from(row.entry)), node)) {
        nodes.set(`${n.level}/${n.index}`, n.hash);
        added.push(n);
      }
    }
    for (let i = 0; i < added.length; i += INSERT_CHUNK) {
      await trx
        .insertInto('ledger_nodes')
        .values(added.slice(i, i + INSERT_CHUNK).map((n) => ({ level: n.level, idx: n.index, hash: n.hash.toString('hex') })))
        .execute();
    }
    return added.filter((n) => n.level === 0).length;
  });
}

/** Integrates batches until one comes back short: everything sequenced before the call, at least. */
export async function integrateEntries(store: Store, batch = 1000): Promise<number> {
  // The idle case reads the two ends and takes no write lock.
  const { lastLeaf, lastEntry } = await ledgerEnds(store.db);
  if (lastLeaf >= lastEntry) return 0;
  let total = 0;
  for (;;) {
    const added = await integrateBatch(store, batch);
    total += added;
    if (added < batch) return total;
  }
}

/**
 * The last stored leaf and the last stored entry (-1 for none), read in one statement, so entries
 * appended meanwhile (by another server) raise both alike.
 */
export async function ledgerEnds(db: Db): Promise<{ lastLeaf: number; lastEntry: number }> {
  const ends = await db
    .selectNoFrom((eb) => [
      eb
        .selectFrom('ledger_nodes')
        .where('level', '=', 0)
        .select((e) => e.fn.max('idx').as('m'))
        .as('leaf'),
      eb
        .selectFrom('ledger_entries')
        .select((e) => e.fn.max('idx').as('m'))
        .as('entry'),
    ])
    .executeTakeFirstOrThrow();
  return { lastLeaf: ends.leaf === null ? -1 : Number(ends.leaf), lastEntry: ends.entry === null ? -1 : Number(ends.entry) };
}

/** How many leaves the stored tree has. */
export async function storedTreeSize(db: Db): Promise<number> {
  const row = await db
    .selectFrom('ledger_nodes')
    .select((eb) => eb.fn.max('idx').as('last'))
    .where('level', '=', 0)
    .executeTakeFirst();
  return row?.last === null || row?.last === undefined ? 0 : Number(row.last) + 1;
}

async function withNodes<T>(db: Db, operation: (node: NodeReader) => T): Promise<T> {
  return operation(await readNodes(db, nodesRead(operation)));
}

export function readRoot(db: Db, size: number): Promise<Buffer> {
  return withNodes(db, (node) => treeRoot(size, node));
}

export function readInclusionProof(db: Db, index: number, size: number): Promise<Buffer[]> {
  return withNodes(db, (node) => treeInclusionProof(index, size, node));
}

export function readConsistencyProof(db: Db, from: number, to: number): Promise<Buffer[]> {
  return withNodes(db, (node) => treeConsistencyProof(from, to, node));
}
