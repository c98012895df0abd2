/**
 * The ledger's Merkle tree in the store: one row per perfect subtree (src/ledger/tree.ts), written in
 * the same transaction as the entry whose leaf completes it, so the tree always covers exactly the
 * committed entries. Every read of roots and proofs lists the nodes it needs first and fetches them
 * in one query.
 */
import { hashLeaf } from '../ledger/merkle.js';
import { appendNodes, appendSiblings, nodesRead, treeConsistencyProof, treeInclusionProof, treeRoot, type NodeId, type NodeReader } from '../ledger/tree.js';
import type { Db } from './schema.js';

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

/** Stores the leaf of entry `index` (its exact line) and the subtrees it completes. */
export async function storeLeaf(trx: Db, index: number, line: string): Promise<void> {
  const node = await readNodes(trx, appendSiblings(index));
  const nodes = appendNodes(index, hashLeaf(Buffer.from(line)), node);
  await trx
    .insertInto('ledger_nodes')
    .values(nodes.map((n) => ({ level: n.level, idx: n.index, hash: n.hash.toString('hex') })))
    .execute();
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
