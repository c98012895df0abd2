/** Tenant lifecycle (SPEC §4): create, update limits and state, delete (with cascade). */
import { isoTime } from '../clock.js';
import { PpnError, notFound } from '../errors.js';
import { limitsBelowUsage, type QuotaLimits } from '../quota/quota.js';
import type { Db, TenantState } from '../store/schema.js';
import { announce, inTransaction } from '../store/store.js';
import { findTenant, insertTenant, lockTenant, updateTenantRow, type TenantRow } from '../store/tenants.js';
import { listLiveTokens, markRevoked } from '../store/tokens.js';
import { deleteVmRow, listVmRows, usageOf, type Usage } from '../store/vms.js';
import { deleteNodeRow, listNodeRows } from '../store/nodes.js';
import { nameData, recordEvent, type ControlDeps, type Origin } from './context.js';
import type { RevocationList } from './revocations.js';

export interface TenantLimits {
  max_vms: number;
  storage_quota_gb: number;
  api_rate_limit_rpm: number;
  max_vcpus: number | null;
  max_memory_mb: number | null;
}

export interface NewTenant extends TenantLimits {
  tenant_id: string;
  display_name: string;
}

export interface TenantChanges extends Partial<TenantLimits> {
  display_name?: string;
  state?: Exclude<TenantState, 'deleted'>;
  /** Every request under the tenant's tokens must then carry its holder's signature (SPEC §5). */
  require_pop?: boolean;
  /** The scheduler may then place the tenant's VMs on shared nodes (SPEC §7). */
  shared_pool?: boolean;
}

const NO_USAGE = { usage_vms: 0, usage_storage_gb: 0, usage_vcpus: 0, usage_memory_mb: 0 };

export interface TenantWithUsage extends TenantRow {
  usage: Usage;
}

export async function createTenant(deps: ControlDeps, origin: Origin, input: NewTenant): Promise<TenantRow> {
  return inTransaction(deps.store, async (trx) => {
    if (await findTenant(trx, input.tenant_id)) {
      // Deleted tenants stay as tombstones, so this also refuses ids that existed once.
      throw new PpnError('conflict', `tenant ${input.tenant_id} exists or existed; tenant ids are never reused`);
    }
    const now = isoTime(deps.clock.now());
    const row: TenantRow = {
      ...input,
      state: 'active',
      created_at: now,
      updated_at: now,
      vm_generation: 0,
      require_pop: 0,
      shared_pool: 0,
      ...NO_USAGE,
    };
    await insertTenant(trx, row);
    const { tenant_id, ...data } = input;
    await recordEvent(deps, trx, origin, { event_type: 'TENANT_CREATED', tenant_id, subject_ids: {}, data });
    return row;
  });
}

export async function getTenantWithUsage(db: Db, tenantId: string): Promise<TenantWithUsage> {
  const tenant = await findTenant(db, tenantId);
  if (!tenant || tenant.state === 'deleted') throw notFound('tenant');
  return { ...tenant, usage: usageOf(tenant) };
}

export async function updateTenant(deps: ControlDeps, origin: Origin, tenantId: string, changes: TenantChanges, force: boolean): Promise<TenantWithUsage> {
  return inTransaction(deps.store, async (trx) => {
    const tenant = await lockTenant(trx, deps.store.dialect, tenantId);
    if (!tenant) throw notFound('tenant');
    const usage = usageOf(tenant);
    const diff: Record<string, { from: unknown; to: unknown }> = {};
    const set: Partial<TenantRow> = {};
    // The store keeps the switches as 0 or 1; the API and the ledger speak booleans.
    const current = { ...tenant, require_pop: tenant.require_pop === 1, shared_pool: tenant.shared_pool === 1 };
    for (const [key, to] of Object.entries(changes) as [keyof TenantChanges, never][]) {
      if (to === undefined || current[key] === to) continue;
      diff[key] = { from: current[key], to };
      set[key] = typeof to === 'boolean' ? (Number(to) as never) : to;
    }
    const updated: TenantRow = { ...tenant, ...set };
    const newlyBelow = limitsBelowUsage(updated as QuotaLimits, usage).filter((policy) => policy in diff);
    if (newlyBelow.length > 0 && !force) {
      throw new PpnError('conflict', `new limits are below current usage (${newlyBelow.join(', ')}); pass "force": true to lower them anyway`, {
        extensions: { 'violated-policies': newlyBelow, usage },
      });
    }
    if (Object.keys(diff).length === 0) return { ...tenant, usage };
    updated.updated_at = isoTime(deps.clock.now());
    await updateTenantRow(trx, tenantId, { ...set, updated_at: updated.updated_at });
    await recordEvent(deps, trx, origin, {
      event_type: 'TENANT_UPDATED',
      tenant_id: tenantId,
      subject_ids: {},
      data: { changes: diff, force },
    });
    return { ...updated, usage };
  });
}

/**
 * Deletes a tenant. Without cascade it must hold no VMs. With cascade each VM is deleted and each
 * live token revoked, every one with its own ledger entry, before TENANT_DELETED. The tenant row
 * stays as a tombstone; ledger entries are never deleted.
 */
export async function deleteTenant(deps: ControlDeps, revocations: RevocationList, origin: Origin, tenantId: string, cascade: boolean): Promise<void> {
  const revoked = await inTransaction(deps.store, async (trx) => {
    const tenant = await lockTenant(trx, deps.store.dialect, tenantId);
    if (!tenant) throw notFound('tenant');
    const vms = await listVmRows(trx, tenantId, undefined, Number.MAX_SAFE_INTEGER);
    if (vms.length > 0 && !cascade) {
      throw new PpnError('conflict', `tenant ${tenantId} still has ${vms.length} VM(s); delete them first or pass ?cascade=true`);
    }
    const nodes = await listNodeRows(trx, tenantId, undefined, Number.MAX_SAFE_INTEGER);
    if (nodes.length > 0 && !cascade) {
      throw new PpnError('conflict', `tenant ${tenantId} still has ${nodes.length} fleet node(s); remove them first or pass ?cascade=true`);
    }
    for (const vm of vms) {
      await deleteVmRow(trx, vm);
      await recordEvent(deps, trx, origin, {
        event_type: 'VM_DELETED',
        tenant_id: tenantId,
        subject_ids: { vm_id: vm.vm_id },
        data: { name: vm.name, state: vm.state, reason: 'tenant deleted' },
      });
    }
    // Its VMs are gone, so its nodes' agents destroy whatever they still run on their next heartbeat.
    for (const node of nodes) {
      await deleteNodeRow(trx, node);
      await recordEvent(deps, trx, origin, {
        event_type: 'NODE_REMOVED',
        tenant_id: tenantId,
        subject_ids: { node_id: node.node_id },
        data: { vms_failed: 0, public_key: node.public_key, reason: 'tenant deleted' },
      });
    }
    const now = isoTime(deps.clock.now());
    const tokens = await listLiveTokens(trx, { tenantId });
    for (const { token_id: tokenId, name } of tokens) {
      await markRevoked(trx, tenantId, tokenId, now);
      await recordEvent(deps, trx, origin, {
        event_type: 'TOKEN_REVOKED',
        tenant_id: tenantId,
        subject_ids: { token_id: tokenId },
        data: { reason: 'tenant deleted', ...nameData(name) },
      });
    }
    const tokenIds = tokens.map((token) => token.token_id);
    if (tokenIds.length > 0) await announce(trx, deps.store.dialect, 'ppn_revocations');
    await updateTenantRow(trx, tenantId, { state: 'deleted', updated_at: now });
    await recordEvent(deps, trx, origin, {
      event_type: 'TENANT_DELETED',
      tenant_id: tenantId,
      subject_ids: {},
      data: { cascade, vms_deleted: vms.length, nodes_removed: nodes.length, tokens_revoked: tokenIds.length },
    });
    return tokenIds;
  });
  revocations.add(tenantId, revoked);
}
