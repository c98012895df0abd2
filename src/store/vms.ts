/** VM rows and the usage derived from them. */
import type { Usage } from '../quota/quota.js';
import { prepareQuery } from './prepared.js';
import type { Db, DesiredState, VmState, VmsTable } from './schema.js';
import { tenantRowWritten, type TenantRow } from './tenants.js';
import { addBlockUsage } from './token-blocks.js';

export type VmRow = VmsTable;

export type { Usage };

/** A tenant's usage as its row carries it (read with the tenant, under its lock for a decision). */
export function usageOf(tenant: Pick<TenantRow, 'usage_vms' | 'usage_storage_gb' | 'usage_vcpus' | 'usage_memory_mb'>): Usage {
  return {
    vms: Number(tenant.usage_vms),
    storage_gb: Number(tenant.usage_storage_gb),
    vcpus: Number(tenant.usage_vcpus),
    memory_mb: Number(tenant.usage_memory_mb),
  };
}

/**
 * Marks the tenant's VM set as changed and adds `delta` to its usage; every write below calls it in
 * the same transaction as the VM row, so the usage cannot drift from the rows.
 */
async function recordVmChange(trx: Db, tenantId: string, delta: Usage | null): Promise<void> {
  tenantRowWritten(tenantId);
  if (delta === null) await bumpVmGeneration(trx, tenantId);
  else await addTenantUsage(trx, delta.vms, delta.storage_gb, delta.vcpus, delta.memory_mb, tenantId);
}

const bumpVmGeneration = prepareQuery((db: Db, tenantId: string) =>
  db
    .updateTable('tenants')
    .set((eb) => ({ vm_generation: eb('vm_generation', '+', 1) }))
    .where('tenant_id', '=', tenantId),
);

const addTenantUsage = prepareQuery((db: Db, vms: number, storageGb: number, vcpus: number, memoryMb: number, tenantId: string) =>
  db
    .updateTable('tenants')
    .set((eb) => ({
      vm_generation: eb('vm_generation', '+', 1),
      usage_vms: eb('usage_vms', '+', vms),
      usage_storage_gb: eb('usage_storage_gb', '+', storageGb),
      usage_vcpus: eb('usage_vcpus', '+', vcpus),
      usage_memory_mb: eb('usage_memory_mb', '+', memoryMb),
    }))
    .where('tenant_id', '=', tenantId),
);

/** The token block ids a VM was created under, root first. */
export function tokenChainOf(vm: Pick<VmRow, 'token_chain'>): string[] {
  return vm.token_chain ? (JSON.parse(vm.token_chain) as string[]) : [];
}

function resourcesOf(vm: VmRow, sign: 1 | -1): Usage {
  return { vms: sign, storage_gb: sign * vm.disk_gb, vcpus: sign * vm.vcpus, memory_mb: sign * vm.memory_mb };
}

/** Every column of a VM row, in the order the prepared insert binds them. */
const VM_COLUMNS = [
  'vm_id',
  'tenant_id',
  'name',
  'vcpus',
  'memory_mb',
  'disk_gb',
  'image',
  'state',
  'desired_state',
  'node_id',
  'reason',
  'created_at',
  'updated_at',
  'created_by',
  'token_chain',
  'node_pool',
] as const satisfies readonly (keyof VmRow)[];

// A column added to VmsTable but not to the list above fails the type-check here.
const allColumns: [Exclude<keyof VmRow, (typeof VM_COLUMNS)[number]>] extends [never] ? true : never = true;
void allColumns;

const insertVmRow = prepareQuery((db: Db, ...values: (string | number | null)[]) =>
  db.insertInto('vms').values(Object.fromEntries(VM_COLUMNS.map((column, i) => [column, values[i]])) as unknown as VmRow),
);

/** Inserts a VM and counts it in its tenant and in every block of its token chain. */
export async function insertVm(trx: Db, row: VmRow): Promise<void> {
  await insertVmRow(trx, ...VM_COLUMNS.map((column) => row[column]));
  await addBlockUsage(trx, row.tenant_id, tokenChainOf(row), resourcesOf(row, 1));
  await recordVmChange(trx, row.tenant_id, resourcesOf(row, 1));
}

export async function findVm(db: Db, vmId: string, tenantId: string | null): Promise<VmRow | undefined> {
  return db
    .selectFrom('vms')
    .selectAll()
    .where('vm_id', '=', vmId)
    .$if(tenantId !== null, (q) => q.where('tenant_id', '=', tenantId!))
    .executeTakeFirst();
}

const selectVmByName = prepareQuery((db: Db, tenantId: string, name: string) =>
  db.selectFrom('vms').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name),
);

export async function findVmByName(db: Db, tenantId: string, name: string): Promise<VmRow | undefined> {
  return (await selectVmByName(db, tenantId, name)).rows[0];
}

/** One tenant's VMs (null: every tenant's) in id order; with `name`, only those of that name. */
export async function listVmRows(db: Db, tenantId: string | null, afterId: string | undefined, limit: number, name?: string): Promise<VmRow[]> {
  return db
    .selectFrom('vms')
    .selectAll()
    .$if(tenantId !== null, (q) => q.where('tenant_id', '=', tenantId!))
    .$if(name !== undefined, (q) => q.where('name', '=', name!))
    .$if(afterId !== undefined, (q) => q.where('vm_id', '>', afterId!))
    .orderBy('vm_id')
    .limit(limit)
    .execute();
}

export async function updateVmRow(
  trx: Db,
  vm: Pick<VmRow, 'vm_id' | 'tenant_id'>,
  changes: { state?: VmState; desired_state?: DesiredState; reason?: string | null; node_id?: string | null; node_pool?: string | null; updated_at: string },
): Promise<void> {
  await trx.updateTable('vms').set(changes).where('vm_id', '=', vm.vm_id).execute();
  // None of these changes what the VM counts for: every VM row counts, whatever its state or node.
  await recordVmChange(trx, vm.tenant_id, null);
}

/** Removes a VM and frees what it held in its tenant and in every block of its token chain. */
export async function deleteVmRow(trx: Db, vm: VmRow): Promise<void> {
  await trx.deleteFrom('vms').where('vm_id', '=', vm.vm_id).execute();
  await trx.deleteFrom('vm_consoles').where('vm_id', '=', vm.vm_id).execute();
  await addBlockUsage(trx, vm.tenant_id, tokenChainOf(vm), resourcesOf(vm, -1));
  await recordVmChange(trx, vm.tenant_id, resourcesOf(vm, -1));
}

/**
 * The VMs placed on (or pinned to) one node, in id order. `lock` (PostgreSQL) holds their rows until
 * the transaction ends, so a heartbeat never writes a state over a delete committed meanwhile.
 */
export async function listVmsOnNode(db: Db, pool: string, nodeId: string, lock = false): Promise<VmRow[]> {
  return db
    .selectFrom('vms')
    .selectAll()
    .where('node_pool', '=', pool)
    .where('node_id', '=', nodeId)
    .orderBy('vm_id')
    .$if(lock, (q) => q.forUpdate())
    .execute();
}

/** VMs waiting for a node, oldest first. */
export async function listPendingVms(db: Db, limit: number): Promise<VmRow[]> {
  return db.selectFrom('vms').selectAll().where('state', '=', 'pending').orderBy('created_at').orderBy('vm_id').limit(limit).execute();
}

export interface NodeAllocation {
  node_pool: string;
  node_id: string;
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  vms: number;
}

/** What the VMs placed on each node (or one node) hold (pinned VMs still pending hold nothing yet). */
export async function sumNodeAllocations(db: Db, only?: { pool: string; nodeId: string }): Promise<NodeAllocation[]> {
  const rows = await db
    .selectFrom('vms')
    .select((eb) => [
      'node_pool',
      'node_id',
      eb.fn.countAll<number>().as('vms'),
      eb.fn.sum<number>('vcpus').as('vcpus'),
      eb.fn.sum<number>('memory_mb').as('memory_mb'),
      eb.fn.sum<number>('disk_gb').as('disk_gb'),
    ])
    .where('node_id', 'is not', null)
    .where('state', '!=', 'pending')
    .$if(only !== undefined, (q) => q.where('node_pool', '=', only!.pool).where('node_id', '=', only!.nodeId))
    .groupBy(['node_pool', 'node_id'])
    .execute();
  return rows.map((r) => ({
    node_pool: r.node_pool!,
    node_id: r.node_id!,
    vms: Number(r.vms),
    vcpus: Number(r.vcpus),
    memory_mb: Number(r.memory_mb),
    disk_gb: Number(r.disk_gb),
  }));
}
