/** Appending to and reading the audit ledger's entries. */
import { sql } from 'kysely';
import { encodeEntry, type EntryDraft, type EventType } from '../ledger/entry.js';
import { prepareQuery } from './prepared.js';
import type { Db } from './schema.js';
import type { Dialect } from './dialect.js';

/** Key of the PostgreSQL advisory lock that orders ledger appends across all replicas ("ppnl"). */
const LEDGER_LOCK_KEY = 0x70706e6c;

/** Serialises ledger writers until the transaction ends (PostgreSQL; SQLite has one writer). */
export async function lockLedger(trx: Db, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${LEDGER_LOCK_KEY})`.execute(trx);
}

/**
 * Sequences one entry: gives it the next index, stores it, and returns the index. Call it only inside
 * the transaction that makes the change the entry records. Indexes are gapless from 0: the next one
 * is read in the same transaction, and writers are serialised before that read: by SQLite's single
 * writer, or on PostgreSQL by a transaction-scoped advisory lock that every replica takes, held
 * until commit or rollback. So no two transactions can read the same next index, and a rolled-back
 * one leaves no gap. The Merkle tree is not touched here: the leader integrates the entry later
 * (store/ledger-tree.ts#integrateBatch), so the lock covers only the index and the row.
 */
let sequenced = 0;

/**
 * How many entries this process has sequenced (appendEntry calls, including any later rolled back):
 * a cheap way for the server to tell whether a request wrote to the ledger, so it wakes the
 * integrator only then.
 */
export function entriesSequenced(): number {
  return sequenced;
}

export async function appendEntry(trx: Db, dialect: Dialect, draft: EntryDraft, now: () => string): Promise<number> {
  await lockLedger(trx, dialect);
  sequenced++;
  // The time is read under the ledger lock, so times never go backwards along the index order.
  const ts = now();
  const row = (await selectLastIndex(trx)).rows[0];
  const index = row?.last === null || row?.last === undefined ? 0 : Number(row.last) + 1;
  const line = encodeEntry({ index, ts, ...draft });
  const { subject_ids: subjects } = draft;
  await insertEntry(
    trx,
    index,
    ts,
    draft.event_type,
    draft.tenant_id,
    subjects.vm_id ?? null,
    subjects.node_id ?? null,
    subjects.token_id ?? null,
    draft.actor.token_id,
    line,
  );
  return index;
}

const selectLastIndex = prepareQuery((db: Db) => db.selectFrom('ledger_entries').select((eb) => eb.fn.max('idx').as('last')));

const insertEntry = prepareQuery(
  (
    db: Db,
    idx: number,
    ts: string,
    eventType: string,
    tenantId: string | null,
    vmId: string | null,
    nodeId: string | null,
    tokenId: string | null,
    actorTokenId: string | null,
    entry: string,
  ) =>
    db.insertInto('ledger_entries').values({
      idx,
      ts,
      event_type: eventType as EventType,
      tenant_id: tenantId,
      vm_id: vmId,
      node_id: nodeId,
      token_id: tokenId,
      actor_token_id: actorTokenId,
      entry,
    }),
);

export interface EntryFilter {
  tenantId?: string;
  vmId?: string;
  nodeId?: string;
  /** Matches entries about the token and entries the token's holder caused. */
  tokenId?: string;
  eventType?: EventType;
  since?: string;
  until?: string;
  /** Newest first (highest index first) instead of oldest first. */
  newestFirst?: boolean;
  /** Entries after this index in the listing's order: higher oldest first, lower newest first. */
  afterIndex?: number;
  limit: number;
}

export interface StoredEntry {
  index: number;
  /** The stored bytes, exactly. */
  line: string;
}

export async function readEntries(db: Db, filter: EntryFilter): Promise<StoredEntry[]> {
  let query = db.selectFrom('ledger_entries').select(['idx', 'entry']);
  if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
  if (filter.vmId !== undefined) query = query.where('vm_id', '=', filter.vmId);
  if (filter.nodeId !== undefined) query = query.where('node_id', '=', filter.nodeId);
  if (filter.tokenId !== undefined) {
    const tokenId = filter.tokenId;
    query = query.where((eb) => eb.or([eb('token_id', '=', tokenId), eb('actor_token_id', '=', tokenId)]));
  }
  if (filter.eventType !== undefined) query = query.where('event_type', '=', filter.eventType);
  if (filter.since !== undefined) query = query.where('ts', '>=', filter.since);
  if (filter.until !== undefined) query = query.where('ts', '<', filter.until);
  if (filter.afterIndex !== undefined) query = query.where('idx', filter.newestFirst ? '<' : '>', filter.afterIndex);
  const rows = await query
    .orderBy('idx', filter.newestFirst ? 'desc' : 'asc')
    .limit(filter.limit)
    .execute();
  return rows.map((r) => ({ index: Number(r.idx), line: r.entry }));
}

/** One entry's stored line and tenant, or undefined when there is no such index. */
export async function readEntryRow(db: Db, index: number): Promise<{ line: string; tenantId: string | null } | undefined> {
  const row = await db.selectFrom('ledger_entries').select(['entry', 'tenant_id']).where('idx', '=', index).executeTakeFirst();
  return row ? { line: row.entry, tenantId: row.tenant_id } : undefined;
}

/** TOKEN_REVOKED entries after `afterIndex`, in ledger order. */
export async function listRevocationsSince(db: Db, afterIndex: number): Promise<{ index: number; tenantId: string | null; tokenId: string }[]> {
  const rows = await db
    .selectFrom('ledger_entries')
    .select(['idx', 'tenant_id', 'token_id'])
    .where('event_type', '=', 'TOKEN_REVOKED')
    .where('idx', '>', afterIndex)
    .orderBy('idx')
    .execute();
  return rows.filter((r) => r.token_id !== null).map((r) => ({ index: Number(r.idx), tenantId: r.tenant_id, tokenId: r.token_id! }));
}

/** When the tenant first revoked this token or block id, from its TOKEN_REVOKED entry; undefined if never. */
export async function findRevocationTime(db: Db, tenantId: string, tokenId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('ledger_entries')
    .select('ts')
    .where('event_type', '=', 'TOKEN_REVOKED')
    .where('tenant_id', '=', tenantId)
    .where('token_id', '=', tokenId)
    .orderBy('idx')
    .executeTakeFirst();
  return row?.ts;
}

export async function countEntries(db: Db, eventType?: EventType): Promise<number> {
  let query = db.selectFrom('ledger_entries').select((eb) => eb.fn.countAll<number>().as('n'));
  if (eventType) query = query.where('event_type', '=', eventType);
  const row = await query.executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The index of the last KEY_ROTATED or KEY_RETIRED entry, or -1: a server reloads its keys when it grows. */
export async function lastKeyEventIndex(db: Db): Promise<number> {
  const row = await db
    .selectFrom('ledger_entries')
    .select((eb) => eb.fn.max('idx').as('last'))
    .where('event_type', 'in', ['KEY_ROTATED', 'KEY_RETIRED'])
    .executeTakeFirst();
  return row?.last === null || row?.last === undefined ? -1 : Number(row.last);
}
