/**
 * Where accepted request-signature nonces are remembered (SPEC §5: none accepted twice within the
 * window, on any replica, across restarts). One SQLite server is the only process serving its store,
 * so a map in its memory is the record, and a journal in the data directory (nonce-journal.ts)
 * carries it across a restart; PostgreSQL replicas share a table (src/store/request-nonces.ts).
 */
import type { Clock } from '../clock.js';
import { PpnError } from '../errors.js';
import type { AcceptNonce } from '../httpsig/verify.js';
import { acceptRequestNonce } from '../store/request-nonces.js';
import type { Store } from '../store/store.js';
import { NonceJournal } from './nonce-journal.js';

export interface NonceRecord {
  accept: AcceptNonce;
  /** Syncs and closes the journal, if there is one. */
  close(): void;
}

/**
 * The record for `store`. On SQLite, `journalDir` keeps it across restarts (serve passes the data
 * directory's `nonces/`); without one (tests, benchmarks) a restart forgets it. `onJournalError`
 * hears why the journal could not be written (for the operator's log; the caller gets a 503).
 */
export function openNonceRecord(store: Store, clock: Clock, journalDir?: string, onJournalError?: (error: Error) => void): NonceRecord {
  if (store.dialect === 'postgres') {
    return { accept: (keyid, nonce, expiresAt) => acceptRequestNonce(store.db, keyid, nonce, expiresAt, clock.now()), close: () => {} };
  }
  const memory = new MemoryNonceRecord(clock, journalDir, onJournalError);
  return { accept: async (keyid, nonce, expiresAt) => memory.accept(keyid, nonce, expiresAt), close: () => memory.close() };
}

/**
 * `keyid nonce` → expiry. Entries are swept on insert from the oldest while they have expired; as
 * `created` may be up to 60 s either side of the clock, a few expired entries may wait behind a live
 * one, so the map holds at most the requests of about two minutes, which the rate limit bounds.
 */
export class MemoryNonceRecord {
  private readonly expiries = new Map<string, number>();
  private readonly journal: NonceJournal | null = null;

  constructor(
    private readonly clock: Clock,
    journalDir?: string,
    private readonly onJournalError: (error: Error) => void = () => {},
  ) {
    if (journalDir === undefined) return;
    const { journal, live } = NonceJournal.open(journalDir, clock.now());
    this.journal = journal;
    for (const { keyid, nonce, expiresAt } of live) {
      const key = `${keyid} ${nonce}`;
      this.expiries.set(key, Math.max(expiresAt, this.expiries.get(key) ?? 0));
    }
  }

  accept(keyid: string, nonce: string, expiresAt: number): boolean {
    const now = this.clock.now();
    for (const [key, expiry] of this.expiries) {
      if (expiry > now) break;
      this.expiries.delete(key);
    }
    const key = `${keyid} ${nonce}`;
    const seen = this.expiries.get(key);
    if (seen !== undefined && seen > now) return false;
    if (this.journal) {
      try {
        this.journal.append({ keyid, nonce, expiresAt }, now);
      } catch (error) {
        // Accepted but not written, the nonce could be replayed after a restart: refuse instead.
        this.onJournalError(error as Error);
        throw new PpnError('store_unavailable', 'the record of request-signature nonces could not be written; try again');
      }
    }
    this.expiries.delete(key);
    this.expiries.set(key, expiresAt);
    return true;
  }

  close(): void {
    this.journal?.close();
  }
}
