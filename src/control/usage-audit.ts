/**
 * The usage audit (docs/design/quotas-and-rate-limits.md): the leader recomputes every tenant's and
 * every token block's usage from the VM rows and compares it with the stored usage that quota
 * decisions read. Any difference is a bug (a path that changed VM rows without their usage) or a
 * hand edit of the database: it is reported, by an error log line and a metric, and never silently
 * rewritten, so the evidence stays for whoever investigates.
 */
import type { Usage } from '../quota/quota.js';
import type { Store } from '../store/store.js';
import { readStoredAndCountedUsage } from '../store/usage.js';

/** A usage row whose stored value differs from what the VM rows add up to. */
export interface UsageDrift {
  tenant_id: string;
  /** null: the tenant's own usage; otherwise the token block's. */
  block_id: string | null;
  stored: Usage;
  counted: Usage;
}

/** Where the audit reports: an error line per difference, and the drift per tenant for the metrics. */
export interface UsageAlarms {
  error(details: Record<string, unknown>, message: string): void;
  /** Differing rows per tenant (empty when none): replaces what the previous audit reported. */
  drift(rowsByTenant: ReadonlyMap<string, number>): void;
}

/** Differences logged one by one per audit; past these, one line says how many more. */
const MAX_LOGGED = 50;

const ZERO: Usage = { vms: 0, storage_gb: 0, vcpus: 0, memory_mb: 0 };

/** Every usage row whose stored value is not what the VM rows count, tenants first. */
export async function findUsageDrift(store: Store): Promise<UsageDrift[]> {
  const rows = new Map<string, UsageDrift>();
  for (const record of await readStoredAndCountedUsage(store.db, store.dialect)) {
    const key = JSON.stringify([record.tenant_id, record.block_id]);
    const row = rows.get(key) ?? { tenant_id: record.tenant_id, block_id: record.block_id, stored: ZERO, counted: ZERO };
    row[record.source] = record.usage;
    rows.set(key, row);
  }
  return [...rows.values()]
    .filter((row) => !sameUsage(row.stored, row.counted))
    .sort((a, b) => a.tenant_id.localeCompare(b.tenant_id) || (a.block_id ?? '').localeCompare(b.block_id ?? ''));
}

/** One audit: finds the drift, logs each difference at error level and hands the counts to the metrics. */
export async function auditUsage(store: Store, alarms: UsageAlarms): Promise<UsageDrift[]> {
  const drift = await findUsageDrift(store);
  const rowsByTenant = new Map<string, number>();
  for (const row of drift) rowsByTenant.set(row.tenant_id, (rowsByTenant.get(row.tenant_id) ?? 0) + 1);
  for (const row of drift.slice(0, MAX_LOGGED)) {
    const whose = row.block_id === null ? `tenant ${row.tenant_id}` : `token block ${row.block_id} of tenant ${row.tenant_id}`;
    alarms.error({ ...row }, `usage drift: the stored usage of ${whose} differs from its VM rows`);
  }
  if (drift.length > MAX_LOGGED) {
    alarms.error({ rows: drift.length, tenants: rowsByTenant.size }, `usage drift: ${drift.length - MAX_LOGGED} more usage rows differ from their VM rows`);
  }
  alarms.drift(rowsByTenant);
  return drift;
}

function sameUsage(a: Usage, b: Usage): boolean {
  return a.vms === b.vms && a.storage_gb === b.storage_gb && a.vcpus === b.vcpus && a.memory_mb === b.memory_mb;
}
