/** VM rows and the usage derived from them. */
import type { Usage } from '../quota/quota.js';
import type { Db, DesiredState, VmState, VmsTable } from './schema.js';
import { addBlockUsage } from './token-blocks.js';

export type VmRow = VmsTable;

export type { Usage };

/**
 * A tenant's usage, summed from its VM rows in the caller's transaction. There is no counter to
 * drift: every VM not yet gone counts (a VM row is removed when the VM is gone).
 */
export async function sumUsage(db: Db, tenantId: string): Promise<Usage> {
  const row = await db
    .selectFrom('vms')
    .select((eb) => [
      eb.fn.countAll<number>().as('vms'),
      eb.fn.coalesce(eb.fn.sum<number>('disk_gb'), eb.lit(0)).as('storage_gb'),
      eb.fn.coalesce(eb.fn.sum<number>('vcpus'), eb.lit(0)).as('vcpus'),
      eb.fn.coalesce(eb.fn.sum<number>('memory_mb'), eb.lit(0)).as('memory_mb'),
    ])
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow();
  return {
    vms: Number(row.vms),
    storage_gb: Number(row.storage_gb),
    vcpus: Number(row.vcpus),
    memory_mb: Number(row.memory_mb),
  };
}

/** Marks the tenant's VM set as changed; every write below calls it in the same transaction. */
async function bumpVmGeneration(trx: Db, tenantId: string): Promise<void> {
  await trx
    .updateTable('tenants')
    .set((eb) => ({ vm_generation: eb('vm_generation', '+', 1) }))
    .where('tenant_id', '=', tenantId)
    .execute();
}

/** The token block ids a VM was created under, root first. */
export function tokenChainOf(vm: Pick<VmRow, 'token_chain'>): string[] {
  return vm.token_chain ? (JSON.parse(vm.token_chain) as string[]) : [];
}

function resourcesOf(vm: VmRow, sign: 1 | -1): Usage {
  return { vms: sign, storage_gb: sign * vm.disk_gb, vcpus: sign * vm.vcpus, memory_mb: sign * vm.memory_mb };
}

/** Inserts a VM and counts it in every block of its token chain. */
export async function insertVm(trx: Db, row: VmRow): Promise<void> {
  await trx.insertInto('vms').values(row).execute();
  await addBlockUsage(trx, row.tenant_id, tokenChainOf(row), resourcesOf(row, 1));
  await bumpVmGeneration(trx, row.tenant_id);
}

export async function findVm(db: Db, vmId: string, tenantId: string | null): Promise<VmRow | undefined> {
  return db
    .selectFrom('vms')
    .selectAll()
    .where('vm_id', '=', vmId)
    .$if(tenantId !== null, (q) => q.where('tenant_id', '=', tenantId!))
    .executeTakeFirst();
}

export async function findVmByName(db: Db, tenantId: string, name: string): Promise<VmRow | undefined> {
  return db.selectFrom('vms').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst();
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
  await bumpVmGeneration(trx, vm.tenant_id);
}

/** Removes a VM and frees what it held in every block of its token chain. */
export async function deleteVmRow(trx: Db, vm: VmRow): Promise<void> {
  await trx.deleteFrom('vms').where('vm_id', '=', vm.vm_id).execute();
  await trx.deleteFrom('vm_consoles').where('vm_id', '=', vm.vm_id).execute();
  await addBlockUsage(trx, vm.tenant_id, tokenChainOf(vm), resourcesOf(vm, -1));
  await bumpVmGeneration(trx, vm.tenant_id);
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
