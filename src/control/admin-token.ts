/** Platform-admin tokens for the local operator, bound to the data directory's admin key. */
import { userInfo, hostname } from 'node:os';
import { isoTime } from '../clock.js';
import { PpnError, notFound } from '../errors.js';
import { LOCAL_OPERATOR } from '../ledger/entry.js';
import { lockLedger } from '../store/ledger.js';
import { announce, inTransaction } from '../store/store.js';
import { countLivePlatformTokens, findPlatformToken, markPlatformTokenRevoked, type TokenRow } from '../store/tokens.js';
import type { PlatformKeyring } from '../tokens/keyring.js';
import { encodeBase64url, rawPublicKey } from '../tokens/keys.js';
import type { KeyObject } from 'node:crypto';
import { nameData, recordEvent, type ControlDeps, type Origin } from './context.js';
import type { RevocationList } from './revocations.js';
import { issueToken, type IssuedToken } from './tokens.js';

export const DEFAULT_ADMIN_TOKEN_SECONDS = 30 * 24 * 3600;

/**
 * A token for a shared fleet node (SPEC §7): node:agent without a tenant, bound to the node key
 * `service-vm-host init` printed, always used with proof of possession. Minted on the server's
 * machine like admin tokens, since only the platform operator may add shared capacity.
 */
export function mintSharedNodeToken(deps: ControlDeps, keyring: PlatformKeyring, nodePublicKey: string, expiresInSeconds: number): Promise<IssuedToken> {
  return mintTenantlessToken(deps, keyring, nodePublicKey, 'node:agent', expiresInSeconds);
}

export function mintAdminToken(deps: ControlDeps, keyring: PlatformKeyring, adminPublicKey: KeyObject, expiresInSeconds: number): Promise<IssuedToken> {
  return mintTenantlessToken(deps, keyring, encodeBase64url(rawPublicKey(adminPublicKey)), 'service:platform-admin', expiresInSeconds);
}

/** A root token without a tenant, issued by the local operator; node tokens demand proof of possession. */
function mintTenantlessToken(
  deps: ControlDeps,
  keyring: PlatformKeyring,
  subjectPubkey: string,
  scope: 'service:platform-admin' | 'node:agent',
  expiresInSeconds: number,
): Promise<IssuedToken> {
  return issueToken(
    deps,
    keyring,
    { actor: LOCAL_OPERATOR, requestId: null },
    {
      tenantId: null,
      subjectPubkey,
      scopes: [scope],
      expiresInSeconds,
      limits: null,
      proofOfPossession: scope === 'node:agent',
      issuedBy: mintedBy(),
    },
  );
}

/** Who minted a platform token: no token issued it, so its issued_by names the operator's account. */
function mintedBy(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers): the host still says where it was minted.
  }
  return `local-operator:${user}@${hostname()}`;
}

/**
 * Revokes a platform-admin token. A caller may not revoke its own token when it is the last live one:
 * nothing would be left to administer the platform with through the API. Revoking again changes
 * nothing. Tokens the revoked one issued in tenants are left alone: they belong to those tenants.
 */
export async function revokePlatformToken(deps: ControlDeps, revocations: RevocationList, origin: Origin, tokenId: string, callerTokenId: string): Promise<TokenRow> {
  const row = await inTransaction(deps.store, async (trx) => {
    // One platform revocation at a time, so two admins cannot each revoke the other's last token.
    await lockLedger(trx, deps.store.dialect);
    const token = await findPlatformToken(trx, tokenId);
    if (!token) throw notFound('token');
    if (token.revoked_at !== null) return { ...token, changed: false };
    const now = isoTime(deps.clock.now());
    if (tokenId === callerTokenId && (await countLivePlatformTokens(trx, now)) <= 1) {
      throw new PpnError('conflict', 'this is the last live platform-admin token: mint another with "service-vm-tenant admin-token" before revoking it');
    }
    await markPlatformTokenRevoked(trx, tokenId, now);
    await recordEvent(deps, trx, origin, { event_type: 'TOKEN_REVOKED', tenant_id: null, subject_ids: { token_id: tokenId }, data: nameData(token.name) });
    await announce(trx, deps.store.dialect, 'ppn_revocations');
    return { ...token, revoked_at: now, changed: true };
  });
  const { changed, ...revoked } = row;
  if (changed) revocations.add(null, [tokenId]);
  return revoked;
}
