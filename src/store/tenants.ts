/** Tenant rows. A deleted tenant is kept as a tombstone (state 'deleted') so its id is never reused. */
import type { Dialect } from './store.js';
import type { CompiledQuery, Insertable, Selectable } from 'kysely';
import type { Db, TenantsTable } from './schema.js';

export type TenantRow = Selectable<TenantsTable>;
export type NewTenantRow = Insertable<TenantsTable>;

const lookupTemplates = new WeakMap<Db, CompiledQuery<TenantRow>>();

/**
 * Runs on every authenticated request, so the query is built and compiled once per connection and
 * only its parameter changes (building and compiling cost more than SQLite's own lookup).
 */
export async function findTenant(db: Db, tenantId: string): Promise<TenantRow | undefined> {
  let template = lookupTemplates.get(db);
  if (!template) {
    template = db.selectFrom('tenants').selectAll().where('tenant_id', '=', '').compile();
    lookupTemplates.set(db, template);
  }
  const result = await db.executeQuery<TenantRow>({ ...template, parameters: [tenantId] });
  return result.rows[0];
}

/**
 * Reads a live tenant and, on PostgreSQL, locks its row until the transaction ends. Every quota
 * decision for a tenant takes this lock first, so decisions for one tenant are serialised while other
 * tenants proceed. SQLite has a single writer, which already serialises them.
 */
export async function lockTenant(trx: Db, dialect: Dialect, tenantId: string): Promise<TenantRow | undefined> {
  return trx
    .selectFrom('tenants')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('state', '!=', 'deleted')
    .$if(dialect === 'postgres', (q) => q.forUpdate())
    .executeTakeFirst();
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
