/**
 * The scheduler (SPEC §7, docs/design/fleet.md). `placeVms` is pure: given the pending VMs, the
 * ready nodes and what is already placed on them, it decides where each VM goes, or why it can go
 * nowhere. `scheduleOnce` is the leader's background turn that reads the store, asks `placeVms`, and
 * writes each placement in its own transaction with its VM_STATE_CHANGED entry.
 */
import { isoTime } from '../clock.js';
import { recordEvent, type ControlDeps, type Origin } from './context.js';
import { CONTROL_PLANE } from '../ledger/entry.js';
import { SHARED_POOL, listNodesInState, lockNode, type NodeRow } from '../store/nodes.js';
import type { Db } from '../store/schema.js';
import { inTransaction } from '../store/store.js';
import { findTenant } from '../store/tenants.js';
import { findVm, listPendingVms, sumNodeAllocations, updateVmRow } from '../store/vms.js';

/** Memory every node keeps for itself beyond what its VMs hold (SPEC §7). */
export const MEMORY_MARGIN_MB = 512;
/** vCPUs a node may promise per CPU it has (`serve --cpu-overcommit`). */
export const DEFAULT_CPU_OVERCOMMIT = 4;

export interface PendingVm {
  vm_id: string;
  tenant_id: string;
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  /** A node the VM was asked for: only it may take the VM. */
  pinned: { pool: string; node_id: string } | null;
  /** Whether the VM's tenant may use shared nodes. */
  shared_pool: boolean;
}

/** A ready node as the scheduler sees it: its capacity and what its placed VMs hold. */
export interface SchedulableNode {
  pool: string;
  node_id: string;
  cpus: number;
  memory_mb_total: number;
  disk_gb_available: number;
  kvm: boolean;
  allocated: { vcpus: number; memory_mb: number; disk_gb: number };
}

export interface Placement {
  vm_id: string;
  pool: string;
  node_id: string;
}

export interface ScheduleResult {
  placements: Placement[];
  /** Why each VM that fits nowhere stays pending. */
  unplaced: Map<string, string>;
}

export interface ScheduleOptions {
  cpuOvercommit: number;
}

const keyOf = (pool: string, nodeId: string) => `${pool}/${nodeId}`;

/** Whether `vm` fits on `node` beside what is allocated there already. */
export function fits(node: SchedulableNode, vm: Pick<PendingVm, 'vcpus' | 'memory_mb' | 'disk_gb'>, options: ScheduleOptions): boolean {
  const a = node.allocated;
  return (
    a.vcpus + vm.vcpus <= Math.floor(node.cpus * options.cpuOvercommit) &&
    a.memory_mb + vm.memory_mb + MEMORY_MARGIN_MB <= node.memory_mb_total &&
    a.disk_gb + vm.disk_gb <= node.disk_gb_available
  );
}

/**
 * Places VMs in the order given (oldest first). Candidates: the tenant's own nodes, and only when
 * none of them fits, shared nodes if the tenant uses the shared pool; a pinned VM only its node.
 * Among those that fit: KVM nodes first, then the most memory left free (spreading), then node
 * order so the result is deterministic. Nodes are never allocated beyond their capacity.
 */
export function placeVms(vms: readonly PendingVm[], nodes: readonly SchedulableNode[], options: ScheduleOptions): ScheduleResult {
  const live = nodes.map((node) => ({ ...node, allocated: { ...node.allocated } }));
  const byKey = new Map(live.map((node) => [keyOf(node.pool, node.node_id), node]));
  const placements: Placement[] = [];
  const unplaced = new Map<string, string>();
  for (const vm of vms) {
    let chosen: SchedulableNode | undefined;
    if (vm.pinned) {
      const node = byKey.get(keyOf(vm.pinned.pool, vm.pinned.node_id));
      if (!node) {
        unplaced.set(vm.vm_id, `its node ${vm.pinned.node_id} is not ready`);
        continue;
      }
      chosen = fits(node, vm, options) ? node : undefined;
    } else {
      chosen = best(live.filter((n) => n.pool === vm.tenant_id && fits(n, vm, options)));
      if (!chosen && vm.shared_pool) chosen = best(live.filter((n) => n.pool === SHARED_POOL && fits(n, vm, options)));
    }
    if (!chosen) {
      unplaced.set(vm.vm_id, whyNowhere(vm, live, options));
      continue;
    }
    chosen.allocated.vcpus += vm.vcpus;
    chosen.allocated.memory_mb += vm.memory_mb;
    chosen.allocated.disk_gb += vm.disk_gb;
    placements.push({ vm_id: vm.vm_id, pool: chosen.pool, node_id: chosen.node_id });
  }
  return { placements, unplaced };
}

function best(candidates: SchedulableNode[]): SchedulableNode | undefined {
  const free = (n: SchedulableNode) => n.memory_mb_total - n.allocated.memory_mb;
  return candidates.sort((a, b) => Number(b.kvm) - Number(a.kvm) || free(b) - free(a) || (keyOf(a.pool, a.node_id) < keyOf(b.pool, b.node_id) ? -1 : 1))[0];
}

function whyNowhere(vm: PendingVm, nodes: readonly SchedulableNode[], options: ScheduleOptions): string {
  const usable = nodes.filter((n) => n.pool === vm.tenant_id || (vm.shared_pool && n.pool === SHARED_POOL));
  const wants = `${vm.vcpus} vCPU, ${vm.memory_mb} MB (+${MEMORY_MARGIN_MB} MB margin), ${vm.disk_gb} GB`;
  if (vm.pinned) return `its node ${vm.pinned.node_id} has no room for ${wants} (cpu overcommit ${options.cpuOvercommit})`;
  if (usable.length === 0) return 'no ready fleet node in this tenant' + (vm.shared_pool ? ' or the shared pool' : '');
  return `no ready node has room for ${wants} (cpu overcommit ${options.cpuOvercommit}; ${usable.length} node(s) considered)`;
}

const SCHEDULER: Origin = { actor: CONTROL_PLANE, requestId: null };
/** Pending VMs one turn considers; the rest wait for the next turn. */
const BATCH = 500;

/**
 * One turn on the leader: places what it can, and records on the others why they wait (written only
 * when the reason changes, and never to the ledger: the state did not change).
 */
export async function scheduleOnce(deps: ControlDeps, options: ScheduleOptions): Promise<number> {
  const pending = await listPendingVms(deps.store.db, BATCH);
  if (pending.length === 0) return 0;
  const sharedTenants = new Map<string, boolean>();
  for (const vm of pending) {
    if (!sharedTenants.has(vm.tenant_id)) sharedTenants.set(vm.tenant_id, (await findTenant(deps.store.db, vm.tenant_id))?.shared_pool === 1);
  }
  const nodes = await listReadyNodes(deps.store.db);
  const result = placeVms(
    pending.map((vm) => ({
      vm_id: vm.vm_id,
      tenant_id: vm.tenant_id,
      vcpus: vm.vcpus,
      memory_mb: vm.memory_mb,
      disk_gb: vm.disk_gb,
      pinned: vm.node_id !== null && vm.node_pool !== null ? { pool: vm.node_pool, node_id: vm.node_id } : null,
      shared_pool: sharedTenants.get(vm.tenant_id)!,
    })),
    nodes,
    options,
  );
  let placed = 0;
  for (const placement of result.placements) {
    placed += (await applyPlacement(deps, placement, options)) ? 1 : 0;
  }
  for (const vm of pending) {
    const reason = result.unplaced.get(vm.vm_id);
    if (reason === undefined || reason === vm.reason) continue;
    await inTransaction(deps.store, async (trx) => {
      const current = await findVm(trx, vm.vm_id, null);
      if (current?.state === 'pending') await updateVmRow(trx, current, { reason, updated_at: isoTime(deps.clock.now()) });
    });
  }
  return placed;
}

/**
 * Writes one placement if the VM is still pending, and the node still ready with room for it (any of
 * which may have changed since the read). The node's row is locked first, so even two schedulers
 * running at once during a leader hand-over cannot both fill the same room.
 */
async function applyPlacement(deps: ControlDeps, placement: Placement, options: ScheduleOptions): Promise<boolean> {
  return inTransaction(deps.store, async (trx) => {
    const node = await lockNode(trx, deps.store.dialect, placement.pool, placement.node_id);
    const vm = await findVm(trx, placement.vm_id, null);
    if (vm?.state !== 'pending' || node?.state !== 'ready') return false;
    const [held] = await sumNodeAllocations(trx, { pool: node.tenant_id, nodeId: node.node_id });
    const allocated = { vcpus: held?.vcpus ?? 0, memory_mb: held?.memory_mb ?? 0, disk_gb: held?.disk_gb ?? 0 };
    if (!fits({ ...schedulable(node), allocated }, vm, options)) return false;
    await updateVmRow(trx, vm, { state: 'scheduled', node_id: node.node_id, node_pool: node.tenant_id, reason: null, updated_at: isoTime(deps.clock.now()) });
    await recordEvent(deps, trx, SCHEDULER, {
      event_type: 'VM_STATE_CHANGED',
      tenant_id: vm.tenant_id,
      subject_ids: { vm_id: vm.vm_id, node_id: node.node_id },
      data: { state: { from: 'pending', to: 'scheduled' }, node_id: node.node_id, shared: node.tenant_id === SHARED_POOL, reason: 'placed by the scheduler' },
    });
    return true;
  });
}

/** The ready nodes with what is placed on each. */
export async function listReadyNodes(db: Db): Promise<SchedulableNode[]> {
  const allocations = new Map((await sumNodeAllocations(db)).map((a) => [keyOf(a.node_pool, a.node_id), a]));
  return (await listNodesInState(db, 'ready')).map((node) => {
    const a = allocations.get(keyOf(node.tenant_id, node.node_id));
    return { ...schedulable(node), allocated: { vcpus: a?.vcpus ?? 0, memory_mb: a?.memory_mb ?? 0, disk_gb: a?.disk_gb ?? 0 } };
  });
}

function schedulable(node: NodeRow): Omit<SchedulableNode, 'allocated'> {
  return {
    pool: node.tenant_id,
    node_id: node.node_id,
    cpus: node.cpus,
    memory_mb_total: node.memory_mb_total,
    disk_gb_available: node.disk_gb_available,
    kvm: node.kvm === 1,
  };
}
