/**
 * Usage per token block (SPEC §5 sub-quotas), keyed by (tenant, block id). Every VM adds its
 * resources to each block of the chain it was created under and takes them away when it is gone, in
 * the same transaction as the VM row, so a quota decision reads one row per block instead of
 * summing VMs.
 */
import type { Usage } from '../quota/quota.js';
import { prepareQuery } from './prepared.js';
import type { Db } from './schema.js';

const ZERO: Usage = { vms: 0, storage_gb: 0, vcpus: 0, memory_mb: 0 };

/** The usage of each named block of a tenant; blocks nothing was created under hold zero. */
export async function readBlockUsage(db: Db, tenantId: string, blockIds: readonly string[]): Promise<Map<string, Usage>> {
  const usage = new Map<string, Usage>(blockIds.map((id) => [id, { ...ZERO }]));
  if (blockIds.length === 0) return usage;
  const rows = await db.selectFrom('token_block_usage').selectAll().where('tenant_id', '=', tenantId).where('block_id', 'in', blockIds).execute();
  for (const row of rows) {
    usage.set(row.block_id, { vms: Number(row.vms), storage_gb: Number(row.storage_gb), vcpus: Number(row.vcpus), memory_mb: Number(row.memory_mb) });
  }
  return usage;
}

/** Adds `delta` (negative to free) to every block of a chain, creating the rows it lacks. */
export async function addBlockUsage(trx: Db, tenantId: string, blockIds: readonly string[], delta: Usage): Promise<void> {
  for (const blockId of new Set(blockIds)) {
    await upsertBlockUsage(trx, tenantId, blockId, delta.vms, delta.storage_gb, delta.vcpus, delta.memory_mb);
  }
}

const upsertBlockUsage = prepareQuery((db: Db, tenantId: string, blockId: string, vms: number, storageGb: number, vcpus: number, memoryMb: number) =>
  db
    .insertInto('token_block_usage')
    .values({ tenant_id: tenantId, block_id: blockId, vms, storage_gb: storageGb, vcpus, memory_mb: memoryMb })
    .onConflict((oc) =>
      oc.columns(['tenant_id', 'block_id']).doUpdateSet((eb) => ({
        vms: eb('token_block_usage.vms', '+', vms),
        storage_gb: eb('token_block_usage.storage_gb', '+', storageGb),
        vcpus: eb('token_block_usage.vcpus', '+', vcpus),
        memory_mb: eb('token_block_usage.memory_mb', '+', memoryMb),
      })),
    ),
);
