/** VM records and the quota decision on create (SPEC §5 sub-quotas, §6). */
import { isoTime } from '../clock.js';
import { PpnError, notFound } from '../errors.js';
import { findQuotaViolations, type QuotaViolation, type VmRequest } from '../quota/quota.js';
import type { Db, DesiredState, VmState } from '../store/schema.js';
import { SHARED_POOL, findNode, type NodeRow } from '../store/nodes.js';
import { inTransaction } from '../store/store.js';
import { lockTenant, type TenantRow } from '../store/tenants.js';
import { readBlockUsage } from '../store/token-blocks.js';
import { deleteVmRow, findVm, findVmByName, insertVm, updateVmRow, usageOf, type VmRow } from '../store/vms.js';
import { recordEvent, type ControlDeps, type Origin } from './context.js';
import { quotaChainOf, type QuotaBlock } from './token-limits.js';

export interface NewVm extends VmRequest {
  /** null: the VM is named after its id. */
  name: string | null;
  image: string | null;
  node_id: string | null;
}

/**
 * The token a VM is created under: its id, and its chain of blocks (root first) with their limits.
 * The VM is counted in every block of that chain and of the lineage its root was issued under.
 */
export interface Creator {
  tokenId: string;
  chain: readonly QuotaBlock[];
}

/** Why a create was refused: the tenant's quota (blockId null) or a token block's limits. */
interface Denial {
  blockId: string | null;
  violations: QuotaViolation[];
}

const WAITING_REASON = 'waiting for the scheduler';

async function findRequestedNode(trx: Db, tenant: TenantRow, nodeId: string): Promise<NodeRow> {
  const own = await findNode(trx, tenant.tenant_id, nodeId);
  if (own) return own;
  const shared = tenant.shared_pool === 1 ? await findNode(trx, SHARED_POOL, nodeId) : undefined;
  if (shared) return shared;
  throw notFound('node');
}

/**
 * Creates a VM if the tenant's quota and the limits of every block of the creator's token chain
 * allow it. The tenant lock (whose row carries the tenant's usage), the block usage reads, the decision and the insert (or the denial's ledger
 * entry) are one transaction, so concurrent creates can never exceed either, and every decision is
 * in the ledger. `creator` is null for VMs made outside any request (benchmarks).
 */
export async function createVm(deps: ControlDeps, origin: Origin, tenantId: string, input: NewVm, creator: Creator | null): Promise<VmRow> {
  const outcome = await inTransaction(deps.store, async (trx) => {
    const tenant = await lockTenant(trx, deps.store.dialect, tenantId);
    if (!tenant) throw notFound('tenant');
    // A requested node must be the tenant's own, or a shared node when the tenant uses the shared
    // pool; another tenant's node is answered as missing, so its existence is not revealed.
    const pinned = input.node_id === null ? null : await findRequestedNode(trx, tenant, input.node_id);
    const vmId = deps.ids('vm');
    const name = input.name ?? vmId;
    if (await findVmByName(trx, tenantId, name)) {
      throw new PpnError('conflict', `a VM named ${name} already exists in this tenant`);
    }
    const chain = await quotaChainOf(trx, creator?.chain ?? []);
    const denial = findTenantDenial(tenant, input) ?? (await findBlockDenial(trx, tenantId, chain, input));
    if (denial) {
      const index = await recordEvent(deps, trx, origin, {
        event_type: 'VM_CREATE_DENIED',
        tenant_id: tenantId,
        subject_ids: {},
        data: {
          name,
          requested: { vcpus: input.vcpus, memory_mb: input.memory_mb, disk_gb: input.disk_gb },
          violated_policies: policiesOf(denial),
          quota: quotaBody(denial.violations[0]!),
          ...(denial.blockId !== null ? { block_id: denial.blockId } : {}),
        },
      });
      return { denied: { ...denial, index }, created: null };
    }
    const now = isoTime(deps.clock.now());
    const vm: VmRow = {
      vm_id: vmId,
      tenant_id: tenantId,
      name,
      vcpus: input.vcpus,
      memory_mb: input.memory_mb,
      disk_gb: input.disk_gb,
      image: input.image,
      state: 'pending',
      desired_state: 'running',
      node_id: pinned?.node_id ?? null,
      node_pool: pinned?.tenant_id ?? null,
      reason: WAITING_REASON,
      created_at: now,
      updated_at: now,
      created_by: creator?.tokenId ?? null,
      token_chain: chain.length > 0 ? JSON.stringify(chain.map((link) => link.jti)) : null,
    };
    await insertVm(trx, vm);
    await recordEvent(deps, trx, origin, {
      event_type: 'VM_CREATED',
      tenant_id: tenantId,
      subject_ids: { vm_id: vm.vm_id },
      data: {
        name: vm.name,
        vcpus: vm.vcpus,
        memory_mb: vm.memory_mb,
        disk_gb: vm.disk_gb,
        image: vm.image,
        desired_state: vm.desired_state,
        ...(vm.node_id !== null ? { node_id: vm.node_id } : {}),
      },
    });
    return { denied: null, created: vm };
  });
  if (outcome.denied) throw quotaExceeded(outcome.denied, outcome.denied.index);
  return outcome.created;
}

/** The tenant's usage is read with its locked row: constant time, and current under the lock. */
function findTenantDenial(tenant: TenantRow, input: VmRequest): Denial | null {
  const violations = findQuotaViolations(tenant, usageOf(tenant), input);
  return violations.length > 0 ? { blockId: null, violations } : null;
}

/** The first block of the chain, root first, whose limits the request would exceed. */
async function findBlockDenial(trx: Db, tenantId: string, chain: readonly QuotaBlock[], input: VmRequest): Promise<Denial | null> {
  const limited = chain.filter((link) => link.lim !== undefined);
  if (limited.length === 0) return null;
  const usage = await readBlockUsage(
    trx,
    tenantId,
    limited.map((link) => link.jti),
  );
  for (const link of limited) {
    const violations = findQuotaViolations(link.lim!, usage.get(link.jti)!, input);
    if (violations.length > 0) return { blockId: link.jti, violations };
  }
  return null;
}

/** Tenant policies by their own names; a token block's as `token:<policy>` (with the block's id beside). */
function policiesOf(denial: Denial): string[] {
  return denial.violations.map((v) => (denial.blockId === null ? v.policy : `token:${v.policy}`));
}

function quotaBody(v: QuotaViolation) {
  return { resource: v.resource, limit: v.limit, used: v.used, requested: v.requested };
}

function quotaExceeded(denial: Denial, ledgerIndex: number): PpnError {
  const first = denial.violations[0]!;
  const whose = denial.blockId === null ? "the tenant's" : `token block ${denial.blockId}'s`;
  return new PpnError(
    'quota_exceeded',
    `creating this VM would exceed ${whose} ${first.policy} quota (limit ${first.limit}, used ${first.used}, requested ${first.requested})`,
    {
      extensions: {
        'violated-policies': policiesOf(denial),
        quota: quotaBody(first),
        ...(denial.blockId !== null ? { block_id: denial.blockId } : {}),
        ledger_index: ledgerIndex,
      },
    },
  );
}

/**
 * Sets what the VM should be doing; its node reconciles towards it through the heartbeat reply
 * (docs/design/fleet.md). A VM being deleted can no longer be started or stopped.
 */
export async function setDesiredState(
  deps: ControlDeps,
  origin: Origin,
  tenantId: string | null,
  vmId: string,
  desired: Exclude<DesiredState, 'deleted'>,
): Promise<VmRow> {
  return inTransaction(deps.store, async (trx) => {
    const vm = await findVm(trx, vmId, tenantId);
    if (!vm) throw notFound('VM');
    if (vm.desired_state === 'deleted') throw new PpnError('conflict', `VM ${vmId} is being deleted`);
    if (vm.desired_state === desired) return vm;
    const updated_at = isoTime(deps.clock.now());
    await updateVmRow(trx, vm, { desired_state: desired, updated_at });
    await recordEvent(deps, trx, origin, {
      event_type: 'VM_STATE_CHANGED',
      tenant_id: vm.tenant_id,
      subject_ids: { vm_id: vmId },
      data: { desired_state: { from: vm.desired_state, to: desired }, state: vm.state },
    });
    return { ...vm, desired_state: desired, updated_at };
  });
}

/**
 * Deletes a VM; returns it when it is now `deleting`, null when it is gone. One never placed on a node is gone at once, its quota free again. A placed one
 * becomes `deleting` (desired `deleted`): its node destroys it, and the record goes (VM_DELETED)
 * when the node reports it gone. Until then it still counts against the quota, since it still holds
 * the node's resources and disk. Deleting again changes nothing.
 */
export async function deleteVm(deps: ControlDeps, origin: Origin, tenantId: string | null, vmId: string): Promise<VmRow | null> {
  return inTransaction(deps.store, async (trx) => {
    const vm = await findVm(trx, vmId, tenantId);
    if (!vm) throw notFound('VM');
    if (vm.state === 'pending' || vm.node_id === null) {
      await removeVm(deps, trx, origin, vm, 'deleted by request');
      return null;
    }
    if (vm.desired_state === 'deleted') return vm;
    return changeVmState(deps, trx, origin, vm, { state: 'deleting', desired_state: 'deleted', reason: null }, 'deleted by request');
  });
}

/** Removes a VM's record with its VM_DELETED entry. */
export async function removeVm(deps: ControlDeps, trx: Db, origin: Origin, vm: VmRow, reason: string): Promise<void> {
  await deleteVmRow(trx, vm);
  await recordEvent(deps, trx, origin, {
    event_type: 'VM_DELETED',
    tenant_id: vm.tenant_id,
    subject_ids: { vm_id: vm.vm_id, ...(vm.node_id !== null ? { node_id: vm.node_id } : {}) },
    data: { name: vm.name, state: vm.state, reason },
  });
}

/**
 * Changes a VM's state (and what else `changes` says) with its VM_STATE_CHANGED entry, from/to and
 * the reason. Nothing is written when nothing changes.
 */
export async function changeVmState(
  deps: ControlDeps,
  trx: Db,
  origin: Origin,
  vm: VmRow,
  changes: { state: VmState; desired_state?: DesiredState; reason?: string | null; node_id?: string | null; node_pool?: string | null },
  why: string,
): Promise<VmRow> {
  const next = { ...vm, ...changes };
  if (next.state === vm.state && next.desired_state === vm.desired_state && next.reason === vm.reason && next.node_id === vm.node_id) return vm;
  next.updated_at = isoTime(deps.clock.now());
  await updateVmRow(trx, vm, { ...changes, updated_at: next.updated_at });
  if (next.state !== vm.state || next.desired_state !== vm.desired_state) {
    await recordEvent(deps, trx, origin, {
      event_type: 'VM_STATE_CHANGED',
      tenant_id: vm.tenant_id,
      subject_ids: { vm_id: vm.vm_id, ...(vm.node_id !== null ? { node_id: vm.node_id } : {}) },
      data: {
        state: { from: vm.state, to: next.state },
        ...(next.desired_state !== vm.desired_state ? { desired_state: { from: vm.desired_state, to: next.desired_state } } : {}),
        reason: next.reason ?? why,
      },
    });
  }
  return next;
}
