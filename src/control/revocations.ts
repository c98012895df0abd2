/**
 * Revoked token ids, held in memory so every request can check its whole chain without a query.
 *
 * The ledger is the source: every revocation, on any replica, commits a TOKEN_REVOKED entry, and
 * ledger indexes are assigned in commit order. So the list follows the ledger by index: `refresh`
 * reads the TOKEN_REVOKED entries after the last index it saw, which misses nothing whichever
 * replica's clock was fast. The server refreshes it every REFRESH_MS; the replica that revoked
 * also adds the ids at once.
 *
 * A revocation is held under its entry's tenant: a block delegated offline has no row, so its
 * revocation is accepted for any id a tenant names, and it must bind only that tenant's chains.
 * Otherwise a tenant admin could cut off another tenant's token by naming its block id.
 */
import type { Db } from '../store/schema.js';
import { listRevocationsSince } from '../store/ledger.js';

/** How often a server re-reads revocations made elsewhere: well inside the 1 s promised (SPEC §5). */
export const REFRESH_MS = 250;

export class RevocationList {
  private readonly revoked = new Set<string>();
  private lastIndex = -1;

  /** Reads the revocations committed since the last call (all of them the first time). */
  async refresh(db: Db): Promise<void> {
    for (const { index, tenantId, tokenId } of await listRevocationsSince(db, this.lastIndex)) {
      this.revoked.add(revocationKey(tenantId, tokenId));
      this.lastIndex = Math.max(this.lastIndex, index);
    }
  }

  /** `tenantId` is null for platform tokens. */
  add(tenantId: string | null, tokenIds: Iterable<string>): void {
    for (const id of tokenIds) this.revoked.add(revocationKey(tenantId, id));
  }

  /** True when any block of the tenant's chain is revoked: revoking a block revokes all delegated from it. */
  anyRevoked(tenantId: string | null, chainTokenIds: Iterable<string>): boolean {
    for (const id of chainTokenIds) if (this.revoked.has(revocationKey(tenantId, id))) return true;
    return false;
  }
}

/** Tenant ids and token ids never contain a space. */
function revocationKey(tenantId: string | null, tokenId: string): string {
  return `${tenantId ?? ''} ${tokenId}`;
}
