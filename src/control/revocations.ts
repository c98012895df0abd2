/**
 * Revoked token ids, held in memory so every request can check its whole chain without a query.
 *
 * The ledger is the source: every revocation, on any replica, commits a TOKEN_REVOKED entry, and
 * ledger indexes are assigned in commit order. So the list follows the ledger by index: `refresh`
 * reads the TOKEN_REVOKED entries after the last index it saw, which misses nothing whichever
 * replica's clock was fast. The server refreshes it every REFRESH_MS; the replica that revoked
 * also adds the ids at once.
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
    for (const { index, tokenId } of await listRevocationsSince(db, this.lastIndex)) {
      this.revoked.add(tokenId);
      this.lastIndex = Math.max(this.lastIndex, index);
    }
  }

  add(tokenIds: Iterable<string>): void {
    for (const id of tokenIds) this.revoked.add(id);
  }

  /** True when any block of the chain is revoked: revoking a block revokes all delegated from it. */
  anyRevoked(chainTokenIds: Iterable<string>): boolean {
    for (const id of chainTokenIds) if (this.revoked.has(id)) return true;
    return false;
  }
}
