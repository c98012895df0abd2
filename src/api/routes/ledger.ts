/**
 * /v1/ledger (SPEC §8): the public key, the latest signed checkpoint, entries, and inclusion and
 * consistency proofs. A tenant's tokens read only that tenant's entries and proofs for them; a
 * platform admin reads all. A checkpoint and a consistency proof show only tree sizes and hashes, so
 * any token that may read its tenant's ledger (`tenant:read`) may have them.
 *
 * Entries carry `leaf_input`, the stored line exactly: SHA-256(0x00 || leaf_input) is the leaf hash
 * that inclusion proofs prove. Hashes are lower-case hex.
 */
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { RouteDeps, TypedApp } from '../deps.js';
import { tenantScopeOf } from '../context.js';
import { decodeCursor, encodeCursor } from '../pagination.js';
import { DnsLabel, Page, ResourceId, TenantId, strictQuery } from '../schemas.js';
import { PpnError, invalidInput, notFound } from '../../errors.js';
import { EVENT_TYPES } from '../../ledger/entry.js';
import { hashLeaf } from '../../ledger/merkle.js';
import { latestCheckpoint } from '../../store/checkpoints.js';
import { readEntries, readEntryRow, type EntryFilter } from '../../store/ledger.js';
import { ledgerEnds, readConsistencyProof, readInclusionProof } from '../../store/ledger-tree.js';

const Index = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const Size = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const Time = Type.String({ maxLength: 64, description: 'an RFC 3339 time, e.g. 2026-01-31T12:00:00Z' });
const Hashes = Type.Array(Type.String());

const EntriesQuery = strictQuery({
  tenant_id: Type.Optional(TenantId),
  vm_id: Type.Optional(ResourceId),
  node_id: Type.Optional(DnsLabel),
  token_id: Type.Optional(ResourceId),
  event_type: Type.Optional(Type.Union(EVENT_TYPES.map((t) => Type.Literal(t)))),
  since: Type.Optional(Time),
  until: Type.Optional(Time),
  /** asc: oldest first (the default); desc: newest first. A cursor continues in its listing's order. */
  order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
  ...Page,
});

const EntryItem = Type.Object({
  index: Type.Integer(),
  /** The stored bytes of the entry, exactly. */
  leaf_input: Type.String(),
  entry: Type.Record(Type.String(), Type.Unknown()),
});

const InclusionQuery = strictQuery({ index: Index, tree_size: Size });
const InclusionProof = Type.Object({ index: Type.Integer(), tree_size: Type.Integer(), leaf_hash: Type.String(), hashes: Hashes });
const ConsistencyQuery = strictQuery({ from: Size, to: Size });
const ConsistencyProof = Type.Object({ from: Type.Integer(), to: Type.Integer(), hashes: Hashes });

/** An RFC 3339 time in the form the ledger stores (UTC, milliseconds), or a 400 naming the field. */
function ledgerTime(field: string, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  // Date.parse rolls impossible dates over (February 30 → March 2; 24:00 → the next day): refuse them.
  const wall = text.slice(0, 16);
  const wallMs = Date.parse(`${wall}Z`);
  const real = !Number.isNaN(ms) && !Number.isNaN(wallMs) && new Date(wallMs).toISOString().slice(0, 16) === wall;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text) || !real) {
    throw invalidInput(field, `${field} is an RFC 3339 time such as 2026-01-31T12:00:00Z`);
  }
  const stored = new Date(ms).toISOString();
  // An offset can push a time outside years 0000–9999, whose ISO form would not compare as text.
  if (!/^\d{4}-/.test(stored)) throw invalidInput(field, `${field} is outside the years 0000 to 9999`);
  return stored;
}

function afterIndexOf(cursor: string | undefined): number | undefined {
  const after = decodeCursor(cursor);
  if (after === undefined) return undefined;
  if (!/^\d{1,16}$/.test(after)) throw invalidInput('cursor', 'cursor is not one this server returned');
  return Number(after);
}

/**
 * The tree size a proof may be asked for: no larger than the stored tree. Entries past it are
 * sequenced but not yet integrated; the leader adds them within about a second, so a size they
 * would reach is answered "retry in a second", and only a size past every entry is bad input.
 */
async function assertWithinTree(deps: RouteDeps, field: string, size: number): Promise<void> {
  const { lastLeaf, lastEntry } = await ledgerEnds(deps.store.db);
  if (size <= lastLeaf + 1) return;
  if (size > lastEntry + 1) throw invalidInput(field, `${field} ${size} is larger than the ledger (${lastEntry + 1} entries)`);
  throw new PpnError(
    'ledger_not_integrated',
    `${field} ${size} is not in the tree yet: ${lastLeaf + 1} of the ${lastEntry + 1} entries are integrated, the rest will be within a second; retry`,
    { extensions: { field, tree_size: lastLeaf + 1 }, headers: { 'Retry-After': '1' } },
  );
}

const hex = (hashes: Buffer[]) => hashes.map((h) => h.toString('hex'));

export function registerLedgerRoutes(app: TypedApp, deps: RouteDeps): void {
  app.get(
    '/v1/ledger/key',
    { schema: { summary: "The ledger's public key, as a signed-note verifier key (text)", security: [] } },
    async (_request, reply: FastifyReply) => {
      if (!deps.ledgerSigner) throw new PpnError('not_found', 'this server signs no checkpoints');
      return reply.type('text/plain; charset=utf-8').send(`${deps.ledgerSigner.verifierKey}\n`);
    },
  );

  app.get(
    '/v1/ledger/checkpoint',
    { config: { scope: 'tenant:read' }, schema: { summary: 'The latest signed checkpoint, a C2SP tlog-checkpoint signed note (text)' } },
    async (_request, reply: FastifyReply) => {
      const checkpoint = await latestCheckpoint(deps.store.db);
      if (!checkpoint) throw new PpnError('not_found', 'no checkpoint has been signed yet');
      return reply.type('text/plain; charset=utf-8').send(checkpoint.note);
    },
  );

  app.get(
    '/v1/ledger/entries',
    {
      config: { scope: 'tenant:read' },
      schema: { querystring: EntriesQuery, response: { 200: Type.Object({ items: Type.Array(EntryItem), next_cursor: Type.Union([Type.String(), Type.Null()]) }) } },
    },
    async (request) => {
      const q = request.query;
      const tenantId = tenantScopeOf(request, q.tenant_id);
      const limit = q.limit ?? 100;
      const since = ledgerTime('since', q.since);
      const until = ledgerTime('until', q.until);
      const afterIndex = afterIndexOf(q.cursor);
      const filter: EntryFilter = {
        limit: limit + 1,
        ...(tenantId !== null ? { tenantId } : {}),
        ...(q.vm_id !== undefined ? { vmId: q.vm_id } : {}),
        ...(q.node_id !== undefined ? { nodeId: q.node_id } : {}),
        ...(q.token_id !== undefined ? { tokenId: q.token_id } : {}),
        ...(q.event_type !== undefined ? { eventType: q.event_type } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(q.order === 'desc' ? { newestFirst: true } : {}),
        ...(afterIndex !== undefined ? { afterIndex } : {}),
      };
      const rows = await readEntries(deps.store.db, filter);
      const items = rows.slice(0, limit).map((row) => ({ index: row.index, leaf_input: row.line, entry: JSON.parse(row.line) as Record<string, unknown> }));
      const next_cursor = rows.length > limit ? encodeCursor(String(items[items.length - 1]!.index)) : null;
      return { items, next_cursor };
    },
  );

  app.get(
    '/v1/ledger/proof/inclusion',
    { config: { scope: 'tenant:read' }, schema: { querystring: InclusionQuery, response: { 200: InclusionProof } } },
    async (request) => {
      const { index, tree_size } = request.query;
      if (index >= tree_size) throw invalidInput('index', `index ${index} is not in a tree of ${tree_size} entries`);
      await assertWithinTree(deps, 'tree_size', tree_size);
      const entry = await readEntryRow(deps.store.db, index);
      // Another tenant's entry is answered exactly as a missing one.
      const own = tenantScopeOf(request, undefined);
      if (!entry || (own !== null && entry.tenantId !== own)) throw notFound(`ledger entry ${index}`);
      const hashes = await readInclusionProof(deps.store.db, index, tree_size);
      return { index, tree_size, leaf_hash: hashLeaf(Buffer.from(entry.line)).toString('hex'), hashes: hex(hashes) };
    },
  );

  app.get(
    '/v1/ledger/proof/consistency',
    { config: { scope: 'tenant:read' }, schema: { querystring: ConsistencyQuery, response: { 200: ConsistencyProof } } },
    async (request) => {
      const { from, to } = request.query;
      if (from > to) throw invalidInput('from', `from (${from}) is larger than to (${to})`);
      await assertWithinTree(deps, 'to', to);
      return { from, to, hashes: hex(await readConsistencyProof(deps.store.db, from, to)) };
    },
  );
}
