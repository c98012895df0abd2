/**
 * The session flush's statements (src/store/sessions.ts) on the run's store: a flush of more rows
 * than one PostgreSQL statement takes (on SQLite, a prepared statement a row) lands in full, and a
 * second flush of the same sessions adds its counts and widens the times of each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listSessionRows, upsertSessions, type SessionRow } from '../../src/store/sessions.js';
import { inTransaction } from '../../src/store/store.js';
import { startHarness, type Harness } from '../support/harness.js';

const TENANT = 'many-sessions';
const ROWS = 250;

function rowsSeenAt(first: string, last: string, count: number): SessionRow[] {
  return Array.from({ length: ROWS }, (_, i) => ({
    tenant_id: TENANT,
    token_id: `tok-${String(i).padStart(4, '0')}`,
    name: null,
    subject: 'bench',
    scopes: '["vm:read"]',
    chain: '[]',
    first_seen: first,
    last_seen: last,
    last_address: `10.0.0.${i % 250}`,
    request_count: count,
  }));
}

describe('the session flush statements', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(TENANT);
  });
  afterAll(async () => {
    await h.close();
  });

  it('writes a flush larger than one statement in full, and adds a second flush to each row', async () => {
    await inTransaction(h.store, (trx) => upsertSessions(trx, h.store.dialect, rowsSeenAt('2026-06-01T00:00:01.000Z', '2026-06-01T00:00:02.000Z', 2)));
    await inTransaction(h.store, (trx) => upsertSessions(trx, h.store.dialect, rowsSeenAt('2026-06-01T00:00:00.000Z', '2026-06-01T00:00:03.000Z', 5)));
    const stored = await listSessionRows(h.store.db, TENANT, undefined, ROWS + 1);
    expect(stored).toHaveLength(ROWS);
    for (const row of stored) {
      expect(row).toMatchObject({ request_count: 7, first_seen: '2026-06-01T00:00:00.000Z', last_seen: '2026-06-01T00:00:03.000Z' });
    }
  });
});
