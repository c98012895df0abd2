/**
 * WORM (SPEC §8): the store itself refuses to change or remove a ledger entry, on SQLite and on
 * PostgreSQL alike (the suite runs on both). The refusal comes from triggers, not from the app.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

describe('ledger entries are write-once in the store', () => {
  let h: Harness;
  let before: { idx: number; entry: string }[];

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant('worm-co');
    before = await h.store.db.selectFrom('ledger_entries').select(['idx', 'entry']).orderBy('idx').execute();
    expect(before.length).toBeGreaterThanOrEqual(2);
  });
  afterAll(async () => {
    await h.close();
  });

  const unchanged = async () => expect(await h.store.db.selectFrom('ledger_entries').select(['idx', 'entry']).orderBy('idx').execute()).toEqual(before);

  it('refuses UPDATE of an entry', async () => {
    await expect(h.store.db.updateTable('ledger_entries').set({ entry: '{}' }).where('idx', '=', 1).execute()).rejects.toThrow(/write-once/);
    await unchanged();
  });

  it('refuses DELETE of an entry, and of all of them', async () => {
    await expect(h.store.db.deleteFrom('ledger_entries').where('idx', '=', 1).execute()).rejects.toThrow(/write-once/);
    await expect(h.store.db.deleteFrom('ledger_entries').execute()).rejects.toThrow(/write-once/);
    await unchanged();
  });

  it('refuses TRUNCATE on PostgreSQL (SQLite has no TRUNCATE)', async () => {
    if (h.store.dialect === 'postgres') {
      await expect(sql`truncate ledger_entries`.execute(h.store.db)).rejects.toThrow(/write-once/);
    } else {
      await expect(sql`truncate ledger_entries`.execute(h.store.db)).rejects.toThrow(/syntax error/);
    }
    await unchanged();
  });
});
