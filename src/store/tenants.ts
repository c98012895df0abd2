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

/**
 * Writes of each tenant's row made by this process, counted by the functions below that write it
 * (tenantRowWritten): a kept row is good only while its tenant's count is what it was when the row
 * was read. Process-wide, so it needs no way from a transaction back to its store; a tenant id that
 * two stores in one process share (tests) only costs a read.
 */
const rowWrites = new Map<string, number>();
const keptRows = new WeakMap<Db, Map<string, KeptRow>>();
interface KeptRow {
  row: TenantRow;
  writes: number;
}
const MAX_KEPT_ROWS = 10_000;

/** Every statement that writes a tenant row calls this (test/meta/tenant-row-writes.test.ts checks). */
export function tenantRowWritten(tenantId: string): void {
  rowWrites.set(tenantId, (rowWrites.get(tenantId) ?? 0) + 1);
}

/**
 * The tenant row as every authenticated request reads it. On SQLite the row is kept in memory and
 * served again until this process writes it: the server is the only writer of its SQLite file (the
 * data directory's lock), and a read outside a transaction waits for the one transaction that holds
 * the connection, so it never sees a write that could still roll back. A read that a write of the
 * same tenant overtook keeps nothing. PostgreSQL replicas write one another's tenants, so there it
 * is read every time.
 */
export async function findTenantForRequest(db: Db, dialect: Dialect, tenantId: string): Promise<TenantRow | undefined> {
  if (dialect !== 'sqlite') return findTenant(db, tenantId);
  let kept = keptRows.get(db);
  if (!kept) {
    kept = new Map<string, KeptRow>();
    keptRows.set(db, kept);
  }
  const writes = rowWrites.get(tenantId) ?? 0;
  const hit = kept.get(tenantId);
  if (hit && hit.writes === writes) return hit.row;
  const row = await findTenant(db, tenantId);
  if (row) {
    // Shared by every request until the next write: nobody may change it in place.
    Object.freeze(row);
    if (!hit && kept.size >= MAX_KEPT_ROWS) kept.clear();
    kept.set(tenantId, { row, writes });
  }
  return row;
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
  tenantRowWritten(row.tenant_id);
  await trx.insertInto('tenants').values(row).execute();
}

export async function updateTenantRow(trx: Db, tenantId: string, changes: Partial<NewTenantRow>): Promise<void> {
  tenantRowWritten(tenantId);
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
