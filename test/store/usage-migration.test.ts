/**
 * Migration 0013_usage on a store that already holds VMs: every tenant's usage columns are filled
 * from its VM rows, so quota decisions after the upgrade see what the sums saw before it. Real
 * SQLite file, or a fresh PostgreSQL database with PPN_TEST_STORE=postgres.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findUsageDrift } from '../../src/control/usage-audit.js';
import { buildMigrations } from '../../src/store/migrations.js';
import { openPostgresStore } from '../../src/store/postgres/open.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';
import { migrateStore, type Store } from '../../src/store/store.js';
import { findTenant } from '../../src/store/tenants.js';
import { usageOf } from '../../src/store/vms.js';
import { dropDatabase, freshDatabaseUrl } from '../support/stores.js';

describe('migration 0013_usage', () => {
  let dir: string;
  let url: string | undefined;
  let store: Store;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ppn-usage-migration-'));
    url = await freshDatabaseUrl();
    store = url ? openPostgresStore(url) : openSqliteStore(join(dir, 'ppn.sqlite'));
    const migrator = new Migrator({ db: store.db, provider: { getMigrations: async () => buildMigrations(store.dialect) } });
    const { error } = await migrator.migrateTo('0012_nodes');
    if (error) throw error instanceof Error ? error : new Error('migrating to 0012_nodes failed', { cause: error });
  });
  afterAll(async () => {
    await store.close();
    await dropDatabase(url);
    rmSync(dir, { recursive: true, force: true });
  });

  it("fills each tenant's usage from the VM rows it already holds", async () => {
    const now = '2026-01-01T00:00:00Z';
    for (const tenantId of ['full', 'empty']) {
      await sql`INSERT INTO tenants (tenant_id, display_name, max_vms, storage_quota_gb, api_rate_limit_rpm, state, created_at, updated_at, require_pop)
                VALUES (${tenantId}, ${tenantId}, 10, 100, 600, 'active', ${now}, ${now}, 0)`.execute(store.db);
    }
    const vms = [
      { id: 'vm-1', vcpus: 1, memory_mb: 512, disk_gb: 10, state: 'pending' },
      { id: 'vm-2', vcpus: 4, memory_mb: 2048, disk_gb: 20, state: 'running' },
      { id: 'vm-3', vcpus: 2, memory_mb: 1024, disk_gb: 5, state: 'failed' },
    ];
    for (const vm of vms) {
      await sql`INSERT INTO vms (vm_id, tenant_id, name, vcpus, memory_mb, disk_gb, state, desired_state, created_at, updated_at)
                VALUES (${vm.id}, 'full', ${vm.id}, ${vm.vcpus}, ${vm.memory_mb}, ${vm.disk_gb}, ${vm.state}, 'running', ${now}, ${now})`.execute(store.db);
    }

    await migrateStore(store);

    expect(usageOf((await findTenant(store.db, 'full'))!)).toEqual({ vms: 3, storage_gb: 35, vcpus: 7, memory_mb: 3584 });
    expect(usageOf((await findTenant(store.db, 'empty'))!)).toEqual({ vms: 0, storage_gb: 0, vcpus: 0, memory_mb: 0 });
    expect(await findUsageDrift(store)).toEqual([]);
  });
});
