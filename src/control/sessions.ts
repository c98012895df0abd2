/**
 * Sessions (SPEC §5): each distinct token in use is a session, keyed within its tenant by the
 * token's final block id (a root token's jti, a delegated token's derived block id).
 *
 * No request writes the store: `record` adds to an aggregate in memory, and `flush` writes all it
 * holds in one transaction, which the server does at most once every FLUSH_MS and once more when it
 * closes. A flush that fails keeps its rows and merges them into the next one, so a store outage
 * loses no counts while the server lives.
 */
import { isoTime } from '../clock.js';
import type { SessionRow } from '../store/sessions.js';
import { upsertSessions } from '../store/sessions.js';
import { inTransaction, type Store } from '../store/store.js';
import type { VerifiedToken } from '../tokens/verify.js';

/** At most one flush a second per server (the bound on session writes). */
export const FLUSH_MS = 1000;

/** A session's unflushed use: times kept as numbers, made RFC 3339 only when flushed. */
type PendingUse = Omit<SessionRow, 'first_seen' | 'last_seen'> & { firstMs: number; lastMs: number };

export class SessionRecorder {
  /** Unflushed use, by tenant and block id. */
  private pending = new Map<string, PendingUse>();

  /**
   * Counts one accepted request of a tenant token; platform tokens belong to no tenant's sessions.
   * `name` is the final block's (see Caller.names).
   */
  record(token: VerifiedToken, name: string | null, address: string, nowMs: number): void {
    if (token.tenantId === null) return;
    const key = `${token.tenantId} ${token.tokenId}`;
    const row = this.pending.get(key);
    if (row) {
      row.request_count += 1;
      if (nowMs < row.firstMs) row.firstMs = nowMs;
      if (nowMs >= row.lastMs) {
        row.lastMs = nowMs;
        row.last_address = address;
      }
      return;
    }
    this.pending.set(key, {
      tenant_id: token.tenantId,
      token_id: token.tokenId,
      name,
      subject: token.subject,
      scopes: JSON.stringify(token.scopes),
      chain: JSON.stringify(token.chain.map((link) => link.jti)),
      firstMs: nowMs,
      lastMs: nowMs,
      last_address: address,
      request_count: 1,
    });
  }

  /** Writes everything recorded since the last flush in one transaction; does nothing when idle. */
  async flush(store: Store): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      const rows = [...batch.values()].map(({ firstMs, lastMs, ...use }): SessionRow => ({ ...use, first_seen: isoTime(firstMs), last_seen: isoTime(lastMs) }));
      await inTransaction(store, (trx) => upsertSessions(trx, store.dialect, rows));
    } catch (error) {
      this.merge(batch);
      throw error;
    }
  }

  /** Puts back a batch whose flush failed, beneath whatever was recorded meanwhile. */
  private merge(batch: Map<string, PendingUse>): void {
    for (const [key, old] of batch) {
      const row = this.pending.get(key);
      if (!row) {
        this.pending.set(key, old);
        continue;
      }
      row.request_count += old.request_count;
      if (old.firstMs < row.firstMs) row.firstMs = old.firstMs;
    }
  }
}
