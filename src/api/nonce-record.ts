/**
 * Where accepted request-signature nonces are remembered (SPEC §5: none accepted twice within the
 * window, on any replica). One SQLite server is the only process serving its store, so a map in its
 * memory is enough; PostgreSQL replicas share a table (src/store/request-nonces.ts).
 */
import type { Clock } from '../clock.js';
import type { AcceptNonce } from '../httpsig/verify.js';
import { acceptRequestNonce } from '../store/request-nonces.js';
import type { Store } from '../store/store.js';

export function nonceRecordFor(store: Store, clock: Clock): AcceptNonce {
  if (store.dialect === 'postgres') return (keyid, nonce, expiresAt) => acceptRequestNonce(store.db, keyid, nonce, expiresAt, clock.now());
  const memory = new MemoryNonceRecord(clock);
  return async (keyid, nonce, expiresAt) => memory.accept(keyid, nonce, expiresAt);
}

/**
 * `keyid nonce` → expiry. Entries are swept on insert from the oldest while they have expired; as
 * `created` may be up to 60 s either side of the clock, a few expired entries may wait behind a live
 * one, so the map holds at most the requests of about two minutes, which the rate limit bounds.
 */
export class MemoryNonceRecord {
  private readonly expiries = new Map<string, number>();
  constructor(private readonly clock: Clock) {}

  accept(keyid: string, nonce: string, expiresAt: number): boolean {
    const now = this.clock.now();
    for (const [key, expiry] of this.expiries) {
      if (expiry > now) break;
      this.expiries.delete(key);
    }
    const key = `${keyid} ${nonce}`;
    const seen = this.expiries.get(key);
    if (seen !== undefined && seen > now) return false;
    this.expiries.delete(key);
    this.expiries.set(key, expiresAt);
    return true;
  }
}
