/**
 * The record of request-signature nonces shared by replicas (PostgreSQL): one row per accepted
 * `keyid nonce`, so a signed request replayed to any replica is refused (SPEC §5). Accepting is one
 * autocommit statement outside any request transaction, so a request that fails later still spends
 * its nonce, and the primary key admits exactly one of two replicas racing on the same nonce.
 */
import type { Db } from './schema.js';

/**
 * Rows are kept this long past their signature's own expiry. Replicas judge `created` by their own
 * clocks; the margin covers the skew between them, so a replica running behind cannot accept a
 * nonce another one has already forgotten.
 */
export const NONCE_SKEW_MARGIN_MS = 60_000;
const SWEEP_BATCH = 5_000;

/** Records the nonce until `expiresAtMs`; false when a live row for it exists already. */
export async function acceptRequestNonce(db: Db, keyid: string, nonce: string, expiresAtMs: number, now: number): Promise<boolean> {
  const row = await db
    .insertInto('request_nonces')
    .values({ keyid, nonce, expires_at_ms: expiresAtMs })
    .onConflict((conflict) =>
      conflict
        .columns(['keyid', 'nonce'])
        .doUpdateSet({ expires_at_ms: (eb) => eb.ref('excluded.expires_at_ms') })
        .where('request_nonces.expires_at_ms', '<', now - NONCE_SKEW_MARGIN_MS),
    )
    .returning('keyid')
    .executeTakeFirst();
  return row !== undefined;
}

/** Deletes rows past their expiry and the margin, in batches: background work for the leader. */
export async function sweepRequestNonces(db: Db, now: number): Promise<number> {
  let total = 0;
  for (;;) {
    const result = await db
      .deleteFrom('request_nonces')
      .where((eb) =>
        eb(
          'nonce',
          'in',
          eb
            .selectFrom('request_nonces as expired')
            .select('expired.nonce')
            .where('expired.expires_at_ms', '<', now - NONCE_SKEW_MARGIN_MS)
            .limit(SWEEP_BATCH),
        ),
      )
      .where('expires_at_ms', '<', now - NONCE_SKEW_MARGIN_MS)
      .executeTakeFirst();
    const deleted = Number(result.numDeletedRows);
    total += deleted;
    if (deleted < SWEEP_BATCH) return total;
  }
}
