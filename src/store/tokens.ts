/** Issued tokens' metadata (never their text) and revocations. */
import type { TokenLimits } from '../tokens/format.js';
import { prepareQuery } from './prepared.js';
import type { Db, TokensTable } from './schema.js';

/** A token block with limits, by its id. */
export interface LimitedBlock {
  jti: string;
  lim: TokenLimits;
}

export type TokenRow = TokensTable;

export async function insertToken(trx: Db, row: TokenRow): Promise<void> {
  await trx.insertInto('tokens').values(row).execute();
}

export async function findToken(db: Db, tokenId: string, tenantId: string): Promise<TokenRow | undefined> {
  return db.selectFrom('tokens').selectAll().where('token_id', '=', tokenId).where('tenant_id', '=', tenantId).executeTakeFirst();
}

/** A tenant's tokens, or the platform-admin tokens when `tenantId` is null, in id order. */
export async function listTokenRows(db: Db, tenantId: string | null, afterId: string | undefined, limit: number): Promise<TokenRow[]> {
  return db
    .selectFrom('tokens')
    .selectAll()
    .where('tenant_id', tenantId === null ? 'is' : '=', tenantId)
    .$if(afterId !== undefined, (q) => q.where('token_id', '>', afterId!))
    .orderBy('token_id')
    .limit(limit)
    .execute();
}

/** The name an issued token was given; null when it has none, or no row (a delegated block). */
export async function findTokenName(db: Db, tokenId: string): Promise<string | null> {
  const row = await db.selectFrom('tokens').select('name').where('token_id', '=', tokenId).executeTakeFirst();
  return row?.name ?? null;
}

/** The tenant's live tokens: their ids and names. */
export async function listLiveTokens(db: Db, by: { tenantId: string }): Promise<Pick<TokenRow, 'token_id' | 'name'>[]> {
  return db.selectFrom('tokens').select(['token_id', 'name']).where('tenant_id', '=', by.tenantId).where('revoked_at', 'is', null).orderBy('token_id').execute();
}

/**
 * The tenant's live tokens issued through the API under block `blockId`: by it, or by any block
 * delegated below it (`issuer_chain` names it), with their names. LIKE only narrows the rows (`_` is
 * a wildcard there, and SQLite's LIKE ignores case); the chain itself decides.
 */
export async function listLiveTokensIssuedUnder(db: Db, tenantId: string, blockId: string): Promise<Pick<TokenRow, 'token_id' | 'name'>[]> {
  const rows = await db
    .selectFrom('tokens')
    .select(['token_id', 'name', 'issued_by', 'issuer_chain'])
    .where('tenant_id', '=', tenantId)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('issued_by', '=', blockId), eb('issuer_chain', 'like', `%"${blockId}"%`)]))
    .orderBy('token_id')
    .execute();
  return rows
    .filter((r) => r.issued_by === blockId || (r.issuer_chain !== null && (JSON.parse(r.issuer_chain) as string[]).includes(blockId)))
    .map((r) => ({ token_id: r.token_id, name: r.name }));
}

const selectQuotaLineage = prepareQuery((db: Db, tokenId: string) => db.selectFrom('tokens').select('quota_lineage').where('token_id', '=', tokenId));

/** The limited blocks a token was issued under (see TokensTable.quota_lineage); none when unknown. */
export async function findQuotaLineage(db: Db, tokenId: string): Promise<LimitedBlock[]> {
  const row = (await selectQuotaLineage(db, tokenId)).rows[0];
  return row?.quota_lineage ? (JSON.parse(row.quota_lineage) as LimitedBlock[]) : [];
}

export async function findPlatformToken(db: Db, tokenId: string): Promise<TokenRow | undefined> {
  return db.selectFrom('tokens').selectAll().where('token_id', '=', tokenId).where('tenant_id', 'is', null).executeTakeFirst();
}

/** Platform tokens neither revoked nor expired at `now` (RFC 3339). */
export async function countLivePlatformTokens(db: Db, now: string): Promise<number> {
  const row = await db
    .selectFrom('tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('tenant_id', 'is', null)
    // Shared nodes' tokens are tenantless too, but administer nothing.
    .where('scopes', 'like', '%"service:platform-admin"%')
    .where('revoked_at', 'is', null)
    .where('expires_at', '>', now)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function markPlatformTokenRevoked(trx: Db, tokenId: string, at: string): Promise<void> {
  await trx.updateTable('tokens').set({ revoked_at: at }).where('token_id', '=', tokenId).where('tenant_id', 'is', null).execute();
}

/** Marks the tenant's token revoked; an id with no row of the tenant changes nothing. */
export async function markRevoked(trx: Db, tenantId: string, tokenId: string, at: string): Promise<void> {
  await trx.updateTable('tokens').set({ revoked_at: at }).where('token_id', '=', tokenId).where('tenant_id', '=', tenantId).execute();
}
