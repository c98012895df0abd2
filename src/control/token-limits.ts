/**
 * Which token blocks a request's creates count against (SPEC §5 sub-quotas): its own chain, root
 * first, preceded by the limited blocks its root was issued under when a limited token issued it
 * through the API. Offline delegation carries limits inside the chain; API issuance records them
 * beside the new token, so neither path lets a capped holder hand out more than it holds.
 */
import { invalidInput } from '../errors.js';
import { findQuotaLineage, type LimitedBlock } from '../store/tokens.js';
import type { Db } from '../store/schema.js';
import { LIMIT_KEYS, type TokenLimits } from '../tokens/format.js';
import type { ChainLink } from '../tokens/verify.js';

/** A block as the quota engine sees it: its id and its limits, if any. */
export type QuotaBlock = Pick<ChainLink, 'jti' | 'lim'>;

/** The blocks a tenant token's creates count against: its root's lineage, then its own chain. */
export async function quotaChainOf(db: Db, chain: readonly QuotaBlock[]): Promise<QuotaBlock[]> {
  if (chain.length === 0) return [];
  return [...(await findQuotaLineage(db, chain[0]!.jti)), ...chain];
}

/** What a token issued under `issuerChain` records as its lineage: the chain's limited blocks. */
export function lineageOf(issuerChain: readonly QuotaBlock[]): LimitedBlock[] {
  return issuerChain.flatMap((block) => (block.lim ? [{ jti: block.jti, lim: block.lim }] : []));
}

/**
 * A token may not be wider than its issuer: every limit any block above it sets must be set on the
 * new token, no higher. Leaving one out would read as "unlimited".
 */
export function assertLimitsWithin(limits: TokenLimits | null, issuerChain: readonly QuotaBlock[]): void {
  for (const block of issuerChain) {
    for (const key of LIMIT_KEYS) {
      const cap = block.lim?.[key];
      if (cap === undefined) continue;
      const value = limits?.[key];
      if (value === undefined || value > cap) {
        throw invalidInput(`limits.${key}`, `limits.${key} must be at most ${cap}, the limit of issuing token block ${block.jti}`);
      }
    }
  }
}
