/**
 * Revoked token ids, held in memory so every request can check its whole chain without a query.
 * Loaded from the store at start and added to after each revocation commits.
 */
import type { Db } from '../store/schema.js';
import { listRevokedTokenIds } from '../store/tokens.js';

export class RevocationList {
  private readonly revoked = new Set<string>();

  async load(db: Db): Promise<void> {
    for (const id of await listRevokedTokenIds(db)) this.revoked.add(id);
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
