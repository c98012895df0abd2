/**
 * Usage as stored (the tenant row's usage columns and token_block_usage) beside usage counted from
 * the VM rows, for the leader's usage audit (src/control/usage-audit.ts). Quota decisions never call
 * this: they read the stored rows alone.
 */
import { sql } from 'kysely';
import type { Usage } from '../quota/quota.js';
import type { Dialect } from './dialect.js';
import type { Db } from './schema.js';

/** One usage row: a tenant's (block_id null) or a token block's, as stored or as counted. */
export interface UsageRecord {
  source: 'stored' | 'counted';
  tenant_id: string;
  block_id: string | null;
  usage: Usage;
}

interface RawRecord {
  source: 'stored' | 'counted';
  tenant_id: string;
  block_id: string | null;
  vms: number | string;
  storage_gb: number | string;
  vcpus: number | string;
  memory_mb: number | string;
}

/**
 * Both sides in one statement, so they come from one snapshot on either store (a statement reads
 * one snapshot under PostgreSQL's READ COMMITTED as under SQLite's WAL) and a write committed
 * meanwhile cannot show as a difference. Stored rows that hold nothing are left out: a tenant or
 * block with no VM counts zero on both sides. A VM counts once in each distinct block of its chain.
 */
export async function readStoredAndCountedUsage(db: Db, dialect: Dialect): Promise<UsageRecord[]> {
  const chainBlocks = dialect === 'postgres' ? sql`jsonb_array_elements_text(v.token_chain::jsonb) AS c(value)` : sql`json_each(v.token_chain) AS c`;
  const result = await sql<RawRecord>`
    SELECT 'counted' AS source, tenant_id, NULL AS block_id,
           COUNT(*) AS vms, SUM(disk_gb) AS storage_gb, SUM(vcpus) AS vcpus, SUM(memory_mb) AS memory_mb
      FROM vms GROUP BY tenant_id
    UNION ALL
    SELECT 'counted', tenant_id, block_id, COUNT(*), SUM(disk_gb), SUM(vcpus), SUM(memory_mb)
      FROM (SELECT DISTINCT v.vm_id, v.tenant_id, c.value AS block_id, v.disk_gb, v.vcpus, v.memory_mb
              FROM vms v, ${chainBlocks}) AS chained
      GROUP BY tenant_id, block_id
    UNION ALL
    SELECT 'stored', tenant_id, NULL, usage_vms, usage_storage_gb, usage_vcpus, usage_memory_mb
      FROM tenants
      WHERE usage_vms <> 0 OR usage_storage_gb <> 0 OR usage_vcpus <> 0 OR usage_memory_mb <> 0
    UNION ALL
    SELECT 'stored', tenant_id, block_id, vms, storage_gb, vcpus, memory_mb
      FROM token_block_usage
      WHERE vms <> 0 OR storage_gb <> 0 OR vcpus <> 0 OR memory_mb <> 0`.execute(db);
  return result.rows.map((row) => ({
    source: row.source,
    tenant_id: row.tenant_id,
    block_id: row.block_id,
    usage: { vms: Number(row.vms), storage_gb: Number(row.storage_gb), vcpus: Number(row.vcpus), memory_mb: Number(row.memory_mb) },
  }));
}
