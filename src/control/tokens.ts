/** Issuing and revoking root capability tokens (SPEC §5). */
import { isoTime } from '../clock.js';
import { PpnError, notFound } from '../errors.js';
import type { TokenLimits } from '../tokens/format.js';
import type { PlatformKeyring } from '../tokens/keyring.js';
import { mintRootToken } from '../tokens/mint.js';
import type { Scope } from '../tokens/scopes.js';
import { announce, inTransaction } from '../store/store.js';
import { lockTenant } from '../store/tenants.js';
import { findRevocationTime } from '../store/ledger.js';
import type { Db } from '../store/schema.js';
import { findSession } from '../store/sessions.js';
import { findToken, insertToken, listLiveTokensIssuedUnder, markRevoked, type TokenRow } from '../store/tokens.js';
import { nameData, recordEvent, type ControlDeps, type Origin } from './context.js';
import type { RevocationList } from './revocations.js';
import { assertLimitsWithin, lineageOf, quotaChainOf, type QuotaBlock } from './token-limits.js';

export { MAX_TOKEN_LIFETIME_SECONDS } from '../tokens/format.js';

export interface TokenRequest {
  /** null for a platform-admin token. */
  tenantId: string | null;
  subjectPubkey: string;
  scopes: Scope[];
  expiresInSeconds: number;
  limits: TokenLimits | null;
  /** The issuing token's chain, for a tenant token: the new token may not be wider than its limits. */
  issuerChain?: readonly QuotaBlock[];
  proofOfPossession: boolean;
  issuedBy: string | null;
  name?: string | null;
  description?: string | null;
}

export interface IssuedToken {
  token: string;
  row: TokenRow;
}

export async function issueToken(deps: ControlDeps, keyring: PlatformKeyring, origin: Origin, request: TokenRequest): Promise<IssuedToken> {
  return inTransaction(deps.store, async (trx) => {
    if (request.tenantId !== null) {
      const tenant = await lockTenant(trx, deps.store.dialect, request.tenantId);
      if (!tenant) throw notFound('tenant');
      if (tenant.require_pop === 1 && !request.proofOfPossession) {
        throw new PpnError('conflict', `tenant ${request.tenantId} requires proof of possession: issue the token with "proof_of_possession": true`);
      }
      // Under the tenant lock, so a revocation committed on another replica, which this server's
      // revocation list may not have caught up with, cannot be slipped past by issuing a new root.
      await assertChainNotRevoked(trx, request.tenantId, request.issuerChain ?? []);
    }
    const issuerQuota = await quotaChainOf(trx, request.issuerChain ?? []);
    assertLimitsWithin(request.limits, issuerQuota);
    const lineage = lineageOf(issuerQuota);
    const nowMs = deps.clock.now();
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + request.expiresInSeconds;
    const jti = deps.ids('tok');
    const token = mintRootToken(
      {
        kid: keyring.activeKid,
        ...(request.tenantId !== null ? { tid: request.tenantId } : {}),
        sub: request.subjectPubkey,
        scp: request.scopes,
        iat,
        exp,
        jti,
        ...(request.limits ? { lim: request.limits } : {}),
        ...(request.proofOfPossession ? { pop: true } : {}),
      },
      keyring.activeKey,
    );
    const row: TokenRow = {
      token_id: jti,
      tenant_id: request.tenantId,
      subject_pubkey: request.subjectPubkey,
      scopes: JSON.stringify(request.scopes),
      limits: request.limits ? JSON.stringify(request.limits) : null,
      pop: request.proofOfPossession ? 1 : 0,
      issued_at: isoTime(iat * 1000),
      expires_at: isoTime(exp * 1000),
      issued_by: request.issuedBy,
      revoked_at: null,
      quota_lineage: lineage.length > 0 ? JSON.stringify(lineage) : null,
      issuer_chain: request.issuerChain && request.issuerChain.length > 0 ? JSON.stringify(request.issuerChain.map((block) => block.jti)) : null,
      name: request.name ?? null,
      description: request.description ?? null,
    };
    await insertToken(trx, row);
    await recordEvent(deps, trx, origin, {
      event_type: 'TOKEN_ISSUED',
      tenant_id: request.tenantId,
      subject_ids: { token_id: jti },
      data: {
        scope: request.scopes,
        subject_pubkey: request.subjectPubkey,
        expires_at: row.expires_at,
        limits: request.limits,
        proof_of_possession: request.proofOfPossession,
        kid: keyring.activeKid,
        ...nameData(row.name),
        ...(row.description !== null ? { description: row.description } : {}),
      },
    });
    return { token, row };
  });
}

/** What a revocation revoked: an issued token (its row), or a block the server has no row for. */
export type Revoked = { kind: 'issued'; row: TokenRow } | { kind: 'block'; tokenId: string; tenantId: string; revokedAt: string };

/**
 * Revokes a token or block of the tenant by id. An id with no row of the tenant is taken as a block
 * delegated offline: the server cannot know such a block until it is used, so the revocation is
 * recorded for the id (a pre-emptive revocation), and binds only this tenant's chains. Revoking
 * again changes nothing and writes no second entry.
 */
export async function revokeToken(deps: ControlDeps, revocations: RevocationList, origin: Origin, tenantId: string, tokenId: string): Promise<Revoked> {
  const { result, revoked } = await inTransaction(deps.store, async (trx) => {
    // The lock also keeps two revocations of one unknown block from both writing an entry.
    if (!(await lockTenant(trx, deps.store.dialect, tenantId))) throw notFound('tenant');
    const token = await findToken(trx, tokenId, tenantId);
    const earlier = token ? token.revoked_at : await findRevocationTime(trx, tenantId, tokenId);
    const revokedAt = earlier ?? isoTime(deps.clock.now());
    const result: Revoked = token ? { kind: 'issued', row: { ...token, revoked_at: revokedAt } } : { kind: 'block', tokenId, tenantId, revokedAt };
    if (earlier !== undefined && earlier !== null) return { result, revoked: [] };
    // A block delegated offline has no row: its name is known once a session of it has been flushed.
    const name = token ? token.name : ((await findSession(trx, tenantId, tokenId))?.name ?? null);
    // A token's holder, or the holder of any block delegated below it, may have issued others through
    // the API; a compromised issuer's tokens go too, each with its own entry naming the token that
    // caused it. Otherwise a delegate could keep a fresh root of its own after its chain is revoked.
    const queue: { id: string; name: string | null; cause: string | null }[] = [{ id: tokenId, name, cause: null }];
    const revoked: string[] = [];
    for (let next = queue.shift(); next; next = queue.shift()) {
      await markRevoked(trx, tenantId, next.id, revokedAt);
      const why = next.cause ? { reason: 'issuer revoked', issuer_token_id: next.cause } : token ? {} : { issued: false };
      await recordEvent(deps, trx, origin, {
        event_type: 'TOKEN_REVOKED',
        tenant_id: tenantId,
        subject_ids: { token_id: next.id },
        data: { ...why, ...nameData(next.name) },
      });
      revoked.push(next.id);
      await announce(trx, deps.store.dialect, 'ppn_revocations');
      for (const child of await listLiveTokensIssuedUnder(trx, tenantId, next.id)) queue.push({ id: child.token_id, name: child.name, cause: next.id });
    }
    return { result, revoked };
  });
  revocations.add(tenantId, revoked);
  return result;
}

/** Refuses to issue under a chain any block of which the tenant has revoked. */
async function assertChainNotRevoked(trx: Db, tenantId: string, chain: readonly QuotaBlock[]): Promise<void> {
  for (const block of chain) {
    if ((await findRevocationTime(trx, tenantId, block.jti)) !== undefined) throw new PpnError('unauthenticated', 'token has been revoked');
  }
}
