/**
 * Quota decisions read the usage kept on the tenant row (constant time), not a count of the VM rows:
 * shown by making the two disagree on purpose. Real app and store (SQLite, or PostgreSQL with
 * PPN_TEST_STORE=postgres).
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

describe('kept usage in quota decisions', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant('kept', { max_vms: 3 });
    expect((await h.request('POST', '/v1/vms?tenant_id=kept', { token: h.adminToken, body: { name: 'one' } })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await h.close();
  });

  it('a create and a tenant read use the usage on the tenant row, however many VM rows there are', async () => {
    await sql`UPDATE tenants SET usage_vms = 3 WHERE tenant_id = 'kept'`.execute(h.store.db);
    const refused = await h.request('POST', '/v1/vms?tenant_id=kept', { token: h.adminToken, body: { name: 'two' } });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ quota: { resource: 'vms', limit: 3, used: 3, requested: 1 } });
    const tenant = await h.request('GET', '/v1/tenants/kept', { token: h.adminToken });
    expect(tenant.json()).toMatchObject({ usage: { vms: 3 } });
  });
});
