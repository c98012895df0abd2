/**
 * The nonce record behind request signatures (SPEC §5: a nonce is accepted once within the window).
 * The record the app uses on the run's store (memory on SQLite, the shared table on PostgreSQL), and
 * the table's own statements, which run on both stores.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { openNonceRecord } from '../../src/api/nonce-record.js';
import { NONCE_SKEW_MARGIN_MS, acceptRequestNonce, sweepRequestNonces } from '../../src/store/request-nonces.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('the nonce record', () => {
  let h: Harness;
  const clock = new ManualClock(Date.parse('2026-06-01T00:00:00Z'));

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('accepts a nonce once per key until it expires, then again', async () => {
    const accept = openNonceRecord(h.store, clock).accept;
    const expiresAt = clock.now() + 60_000;
    expect(await accept('key-1', 'n', expiresAt)).toBe(true);
    expect(await accept('key-1', 'n', expiresAt)).toBe(false);
    // Nonces are the holder's own: another key may use the same text.
    expect(await accept('key-2', 'n', expiresAt)).toBe(true);
    // Past the signature's expiry (and on PostgreSQL the skew margin), the old record no longer counts.
    clock.advance(60_000 + NONCE_SKEW_MARGIN_MS + 1);
    expect(await accept('key-1', 'n', clock.now() + 60_000)).toBe(true);
    expect(await accept('key-1', 'n', clock.now() + 60_000)).toBe(false);
  });

  it('admits exactly one of many concurrent attempts on one nonce', async () => {
    const accept = openNonceRecord(h.store, clock).accept;
    const results = await Promise.all(Array.from({ length: 8 }, () => accept('key-race', 'same', clock.now() + 60_000)));
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it('the shared table: a row is reusable only once past its expiry and the skew margin, and the sweep removes only such rows', async () => {
    const db = h.store.db;
    const now = Date.parse('2026-07-01T00:00:00Z');
    expect(await acceptRequestNonce(db, 'k', 'old', now - 1, now)).toBe(true);
    expect(await acceptRequestNonce(db, 'k', 'old', now + 60_000, now)).toBe(false);
    expect(await acceptRequestNonce(db, 'k', 'old', now + 60_000, now + NONCE_SKEW_MARGIN_MS)).toBe(true);
    expect(await acceptRequestNonce(db, 'k', 'stale', now - NONCE_SKEW_MARGIN_MS - 1, now)).toBe(true);
    expect(await acceptRequestNonce(db, 'k', 'live', now + 1, now)).toBe(true);
    // Earlier cases may have left rows of their own (on PostgreSQL), all long expired by `now`.
    expect(await sweepRequestNonces(db, now)).toBeGreaterThanOrEqual(1);
    expect(
      await db
        .selectFrom('request_nonces')
        .select('nonce')
        .where('expires_at_ms', '<', now - NONCE_SKEW_MARGIN_MS)
        .execute(),
    ).toEqual([]);
    const left = await db.selectFrom('request_nonces').select('nonce').where('keyid', '=', 'k').orderBy('nonce').execute();
    expect(left.map((r) => r.nonce)).toEqual(['live', 'old']);
  });
});
