/** Tenant rows. A deleted tenant is kept as a tombstone (state 'deleted') so its id is never reused. */
import type { Dialect } from './store.js';
import type { Insertable, Selectable } from 'kysely';
import { prepareQuery } from './prepared.js';
import type { Db, TenantsTable } from './schema.js';

export type TenantRow = Selectable<TenantsTable>;
export type NewTenantRow = Insertable<TenantsTable>;

const selectTenant = prepareQuery((db: Db, tenantId: string) => db.selectFrom('tenants').selectAll().where('tenant_id', '=', tenantId));

/** Runs on every authenticated request, so the query is compiled once (prepared.ts). */
export async function findTenant(db: Db, tenantId: string): Promise<TenantRow | undefined> {
  return (await selectTenant(db, tenantId)).rows[0];
}

const selectLiveTenant = (db: Db, tenantId: string) => db.selectFrom('tenants').selectAll().where('tenant_id', '=', tenantId).where('state', '!=', 'deleted');
const readLiveTenant = prepareQuery(selectLiveTenant);
const lockLiveTenant = prepareQuery((db: Db, tenantId: string) => selectLiveTenant(db, tenantId).forUpdate());

/**
 * Reads a live tenant and, on PostgreSQL, locks its row until the transaction ends. Every quota
 * decision for a tenant takes this lock first, so decisions for one tenant are serialised while other
 * tenants proceed. SQLite has a single writer, which already serialises them. Compiled once: every
 * create runs it.
 */
export async function lockTenant(trx: Db, dialect: Dialect, tenantId: string): Promise<TenantRow | undefined> {
  return (await (dialect === 'postgres' ? lockLiveTenant : readLiveTenant)(trx, tenantId)).rows[0];
}

export async function insertTenant(trx: Db, row: NewTenantRow): Promise<void> {
  await trx.insertInto('tenants').values(row).execute();
}

export async function updateTenantRow(trx: Db, tenantId: string, changes: Partial<NewTenantRow>): Promise<void> {
  await trx.updateTable('tenants').set(changes).where('tenant_id', '=', tenantId).execute();
}

export async function listTenantRows(db: Db, afterId: string | undefined, limit: number): Promise<TenantRow[]> {
  return db
    .selectFrom('tenants')
    .selectAll()
    .where('state', '!=', 'deleted')
    .$if(afterId !== undefined, (q) => q.where('tenant_id', '>', afterId!))
    .orderBy('tenant_id')
    .limit(limit)
    .execute();
}

/** Every live tenant's limits beside its kept usage, for the metrics: one statement, no VM row read. */
export async function readTenantQuotas(db: Db) {
  return db
    .selectFrom('tenants')
    .select([
      'tenant_id',
      'max_vms',
      'storage_quota_gb',
      'max_vcpus',
      'max_memory_mb',
      'api_rate_limit_rpm',
      'usage_vms',
      'usage_storage_gb',
      'usage_vcpus',
      'usage_memory_mb',
    ])
    .where('state', '!=', 'deleted')
    .orderBy('tenant_id')
    .execute();
}
