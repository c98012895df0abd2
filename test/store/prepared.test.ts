/**
 * Queries compiled once (src/store/prepared.ts) run with each call's arguments in the placeholders'
 * places and the query's own constants kept, on the store and inside a batch's transaction, on
 * SQLite or PostgreSQL (PPN_TEST_STORE=postgres).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareQuery } from '../../src/store/prepared.js';
import { inTransaction } from '../../src/store/store.js';
import { findTenant, lockTenant } from '../../src/store/tenants.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('queries compiled once', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    for (const id of ['alpha', 'beta', 'gamma']) await h.createTenant(id);
    await h.request('DELETE', '/v1/tenants/gamma', { token: h.adminToken });
  });
  afterAll(() => h.close());

  it('each run takes its own arguments and keeps the constants the query was built with', async () => {
    const namesBetween = prepareQuery((db, from: string, to: string) =>
      db.selectFrom('tenants').select('tenant_id').where('tenant_id', '>=', from).where('tenant_id', '<=', to).where('state', '!=', 'deleted').orderBy('tenant_id'),
    );
    const run = async (from: string, to: string) => (await namesBetween(h.store.db, from, to)).rows.map((r) => r.tenant_id);
    expect(await run('alpha', 'gamma')).toEqual(['alpha', 'beta']);
    expect(await run('b', 'z')).toEqual(['beta']);
    expect(await inTransaction(h.store, async (trx) => (await namesBetween(trx, 'a', 'alpha')).rows)).toEqual([{ tenant_id: 'alpha' }]);
  });

  it('the tenant lookup and the tenant lock find live tenants by id, inside and outside transactions', async () => {
    expect((await findTenant(h.store.db, 'beta'))?.tenant_id).toBe('beta');
    expect((await findTenant(h.store.db, 'gamma'))?.state).toBe('deleted');
    expect(await findTenant(h.store.db, 'nobody')).toBeUndefined();
    const locked = await inTransaction(h.store, async (trx) => [
      (await lockTenant(trx, h.store.dialect, 'alpha'))?.tenant_id,
      await lockTenant(trx, h.store.dialect, 'gamma'),
      (await findTenant(trx, 'alpha'))?.tenant_id,
    ]);
    expect(locked).toEqual(['alpha', undefined, 'alpha']);
  });
});
