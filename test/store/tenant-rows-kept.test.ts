/**
 * The tenant row every authenticated request reads (findTenantForRequest, src/store/tenants.ts): on
 * SQLite kept in memory until this process writes it, on PostgreSQL read every time. Whatever the
 * store, a read after a committed write sees the write, a read after a rolled-back one does not,
 * and a read that waited behind a writing transaction keeps nothing stale.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTransaction } from '../../src/store/store.js';
import { findTenantForRequest, updateTenantRow } from '../../src/store/tenants.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('the tenant row as requests read it', () => {
  let h: Harness;
  const read = (tenantId: string) => findTenantForRequest(h.store.db, h.store.dialect, tenantId);

  beforeAll(async () => {
    h = await startHarness();
    for (const id of ['kept-a', 'kept-b', 'kept-c', 'kept-d']) await h.createTenant(id);
  });
  afterAll(async () => {
    await h.close();
  });

  it('serves the kept row again on SQLite, frozen, and reads it anew on PostgreSQL', async () => {
    const first = await read('kept-a');
    const second = await read('kept-a');
    expect(second).toEqual(first);
    if (h.store.dialect === 'sqlite') {
      expect(second).toBe(first);
      // Shared by every request until the next write: changing it in place throws.
      expect(Object.isFrozen(second)).toBe(true);
    } else {
      expect(second).not.toBe(first);
    }
    expect(await read('no-such-tenant')).toBeUndefined();
  });

  it('sees a committed write at once, and a rolled-back one never', async () => {
    await read('kept-b');
    await inTransaction(h.store, (trx) => updateTenantRow(trx, 'kept-b', { api_rate_limit_rpm: 7, state: 'suspended' }));
    expect(await read('kept-b')).toMatchObject({ api_rate_limit_rpm: 7, state: 'suspended' });

    const failed = inTransaction(h.store, async (trx) => {
      await updateTenantRow(trx, 'kept-b', { api_rate_limit_rpm: 9, state: 'active' });
      throw new Error('rolled back on purpose');
    });
    await expect(failed).rejects.toThrow('rolled back on purpose');
    expect(await read('kept-b')).toMatchObject({ api_rate_limit_rpm: 7, state: 'suspended' });
  });

  it("sees a VM write's new generation, which the VM list cache and quiet heartbeats rely on", async () => {
    const before = (await read('kept-c'))!.vm_generation;
    const res = await h.request('POST', '/v1/vms?tenant_id=kept-c', { token: h.adminToken, body: { name: 'moves-generation' } });
    expect(res.statusCode).toBe(201);
    expect((await read('kept-c'))!.vm_generation).toBeGreaterThan(before);
  });

  it('keeps nothing stale from a read that waited behind a transaction writing the row', async () => {
    await read('kept-d');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let written!: () => void;
    const wrote = new Promise<void>((resolve) => (written = resolve));
    const writing = inTransaction(h.store, async (trx) => {
      await updateTenantRow(trx, 'kept-d', { display_name: 'renamed while a read waited' });
      written();
      await held;
    });
    await wrote;
    // On SQLite this read waits for the transaction's connection; on PostgreSQL it reads the committed row.
    const waiting = read('kept-d');
    release();
    await writing;
    await waiting;
    expect((await read('kept-d'))!.display_name).toBe('renamed while a read waited');
  });
});
