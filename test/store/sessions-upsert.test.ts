/**
 * The session flush's statements (src/store/sessions.ts) on the run's store: a flush of more rows
 * than one PostgreSQL statement takes (on SQLite, one statement fed a JSON array) lands in full, a
 * second flush of the same sessions adds its counts and widens the times of each, and every value
 * arrives exactly as it was (quotes, backslashes, non-ASCII, null).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSession, listSessionRows, upsertSessions, type SessionRow } from '../../src/store/sessions.js';
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

  it('stores every value exactly, keeps the newer last use, and fills a name only where none was', async () => {
    const tenant = TENANT;
    const odd = `it's "quoted" \\ back\\slash, tab\t, ✓ 名前 🚀`;
    const first: SessionRow[] = [
      {
        tenant_id: tenant,
        token_id: 'exact-1',
        name: odd,
        subject: 'sub"1',
        scopes: '["vm:read","vm:write"]',
        chain: '["a","b"]',
        first_seen: '2026-06-02T00:00:01.000Z',
        last_seen: '2026-06-02T00:00:05.000Z',
        last_address: '2001:db8::1',
        request_count: 2_000_000_000,
      },
      {
        tenant_id: tenant,
        token_id: 'exact-2',
        name: null,
        subject: 'sub2',
        scopes: '[]',
        chain: '[]',
        first_seen: '2026-06-02T00:00:01.000Z',
        last_seen: '2026-06-02T00:00:01.000Z',
        last_address: '10.1.1.1',
        request_count: 1,
      },
    ];
    // An older flush (a replica's, say) arrives second: the stored last use and its address stay.
    const second: SessionRow[] = [
      { ...first[0]!, name: null, first_seen: '2026-06-02T00:00:00.000Z', last_seen: '2026-06-02T00:00:04.000Z', last_address: '10.9.9.9', request_count: 3 },
      { ...first[1]!, name: 'named later', last_seen: '2026-06-02T00:00:09.000Z', last_address: '10.2.2.2', request_count: 4 },
    ];
    await inTransaction(h.store, (trx) => upsertSessions(trx, h.store.dialect, first));
    await inTransaction(h.store, (trx) => upsertSessions(trx, h.store.dialect, second));
    expect(await findSession(h.store.db, tenant, 'exact-1')).toEqual({
      ...first[0],
      first_seen: '2026-06-02T00:00:00.000Z',
      request_count: 2_000_000_003,
    });
    expect(await findSession(h.store.db, tenant, 'exact-2')).toEqual({
      ...first[1],
      name: 'named later',
      last_seen: '2026-06-02T00:00:09.000Z',
      last_address: '10.2.2.2',
      request_count: 5,
    });
  });
});
