/**
 * Fleet nodes (SPEC §7, docs/design/fleet.md): enrollment, heartbeats, removal, consoles and the
 * unreachable sweep. A node is addressed by its pool (its tenant, or SHARED_POOL) and node id; every
 * request a node makes is signed by the node key recorded at enrollment, so a node can act only as
 * itself and only on the VMs placed on it.
 */
import { isoTime } from '../clock.js';
import { PpnError, notFound } from '../errors.js';
import { CONTROL_PLANE } from '../ledger/entry.js';
import { SHARED_POOL, deleteNodeRow, findNode, findNodeByKey, insertNode, listSilentNodes, saveConsole, updateNodeRow, type NodeRow } from '../store/nodes.js';
import type { Db, NodeState } from '../store/schema.js';
import { inTransaction } from '../store/store.js';
import { listVmsOnNode, type VmRow } from '../store/vms.js';
import { recordEvent, type ControlDeps, type Origin } from './context.js';
import type { HeartbeatRecorder, KnownAnswer } from './heartbeats.js';
import { FLUSH_MS } from './sessions.js';
import { changeVmState, removeVm } from './vms.js';

/** The heartbeat interval the server asks of its nodes, unless `serve --heartbeat-interval` says otherwise. */
export const HEARTBEAT_INTERVAL_S = 10;
/** A node silent this many intervals is unreachable (SPEC §7). */
export const SILENT_INTERVALS = 3;
/**
 * A heartbeat updates last_heartbeat_at only when the stored one is older than this, so a node
 * beating every interval (10 s) costs a row update every other beat. A quiet heartbeat's time is
 * written by the next flush (src/control/heartbeats.ts, within FLUSH_MS), so the stored time lags by
 * at most 2 intervals plus the flush period: inside the 3 intervals plus the flush period after which
 * the sweep (on the leader) calls the node unreachable.
 */
export function storedHeartbeatMs(intervalS: number): number {
  return 1.5 * intervalS * 1000;
}
/** memory_mb_available moves every beat; it is rewritten only when it moved this much. */
const MEMORY_CHANGE_MB = 256;
/** The console tail kept per VM (SPEC §7): its last 64 KiB. */
export const CONSOLE_BYTES = 64 * 1024;

export interface Capacity {
  cpus: number;
  memory_mb_total: number;
  memory_mb_available: number;
  disk_gb_available: number;
  kvm: boolean;
  load1: number;
}

export type ObservedState = 'starting' | 'running' | 'stopped' | 'failed';

export interface ObservedVm {
  vm_id: string;
  state: ObservedState;
  reason?: string;
}

/** Who is calling: the node key (the token's final holder) and its tenant (null: a platform token). */
export interface NodeCaller {
  tenantId: string | null;
  publicKey: string;
  tokenId: string;
  /** The tenant's vm_generation as read on this request (null: a shared node, never answered from memory). */
  vmGeneration: number | null;
}

export interface HeartbeatReply {
  node: NodeRow;
  vms: VmRow[];
}

type HeartbeatDeps = ControlDeps & { heartbeats: HeartbeatRecorder };

function poolOf(caller: NodeCaller): string {
  return caller.tenantId ?? SHARED_POOL;
}

function ledgerTenant(pool: string): string | null {
  return pool === SHARED_POOL ? null : pool;
}

/** SPEC §7 enroll: one node per key, node ids unique per pool. */
export async function enrollNode(deps: ControlDeps, origin: Origin, caller: NodeCaller, nodeId: string, capacity: Capacity): Promise<NodeRow> {
  return inTransaction(deps.store, async (trx) => {
    const pool = poolOf(caller);
    if (await findNode(trx, pool, nodeId)) throw new PpnError('conflict', `node ${nodeId} is already enrolled`);
    const byKey = await findNodeByKey(trx, caller.publicKey);
    if (byKey) throw new PpnError('conflict', `this node key already enrolled node ${byKey.node_id}`);
    const now = isoTime(deps.clock.now());
    const node: NodeRow = {
      tenant_id: pool,
      node_id: nodeId,
      public_key: caller.publicKey,
      state: 'ready',
      ...storedCapacity(capacity),
      last_heartbeat_at: now,
      enrolled_at: now,
      enrolled_by: caller.tokenId,
    };
    await insertNode(trx, node);
    await recordEvent(deps, trx, origin, {
      event_type: 'NODE_ENROLLED',
      tenant_id: ledgerTenant(pool),
      subject_ids: { node_id: nodeId },
      data: { public_key: caller.publicKey, shared: pool === SHARED_POOL, capacity: storedCapacity(capacity) },
    });
    return node;
  });
}

function storedCapacity(c: Capacity): Pick<NodeRow, 'cpus' | 'memory_mb_total' | 'memory_mb_available' | 'disk_gb_available' | 'kvm'> {
  return { cpus: c.cpus, memory_mb_total: c.memory_mb_total, memory_mb_available: c.memory_mb_available, disk_gb_available: c.disk_gb_available, kvm: c.kvm ? 1 : 0 };
}

/** The node the caller is: it must exist in the caller's pool and be enrolled with the caller's key. */
async function callerNode(trx: Db, caller: NodeCaller, nodeId: string): Promise<NodeRow> {
  const node = await findNode(trx, poolOf(caller), nodeId);
  if (!node) throw notFound('node');
  // A node token for another node's id: the request is signed by the wrong key.
  if (node.public_key !== caller.publicKey) throw new PpnError('forbidden', `this node key is not node ${nodeId}'s key`);
  return node;
}

/**
 * A heartbeat (docs/design/fleet.md): the observed states update the VMs placed on the node, VMs
 * being deleted that the node no longer holds are removed, and the reply lists what the node should
 * run. Only what changed is written, and a ledger entry only for a node or VM state change. A report
 * of a VM not placed on this node refuses the whole heartbeat and changes nothing.
 */
export async function receiveHeartbeat(
  deps: HeartbeatDeps,
  origin: Origin,
  caller: NodeCaller,
  nodeId: string,
  capacity: Capacity,
  observed: readonly ObservedVm[],
  intervalS = HEARTBEAT_INTERVAL_S,
): Promise<HeartbeatReply> {
  const pool = poolOf(caller);
  const known = caller.vmGeneration === null ? undefined : deps.heartbeats.lastAnswer(pool, nodeId);
  if (known?.generation === caller.vmGeneration && known.node.public_key === caller.publicKey && changesNothing(known, capacity, observed)) {
    deps.heartbeats.answered.memory += 1;
    return answerFromMemory(deps, known, intervalS);
  }
  const reply = await heartbeatInStore(deps, origin, caller, { nodeId, capacity, observed, intervalS });
  deps.heartbeats.answered.store += 1;
  // Tagged with the generation auth read before the transaction: a change committed after that read
  // moved it, so this answer is never reused over a change it may not include.
  if (caller.vmGeneration !== null) deps.heartbeats.rememberAnswer(pool, nodeId, caller.vmGeneration, reply.node, reply.vms);
  return reply;
}

/**
 * True when the store would change nothing for this heartbeat but the liveness time: the node is
 * ready, its capacity has not moved, and its report matches the VMs it was told to run, each one
 * that is placed and not scheduled reported (once) in the state and with the reason on record.
 */
function changesNothing(known: KnownAnswer, capacity: Capacity, observed: readonly ObservedVm[]): boolean {
  if (known.node.state !== 'ready' || Object.keys(capacityChanges(known.node, capacity)).length > 0) return false;
  // A scheduled VM is quiet only unreported; any other unreported VM changes (or, being deleted, goes).
  let mustReport = 0;
  for (const vm of known.vms) if (vm.state !== 'scheduled' || vm.desired_state === 'deleted') mustReport += 1;
  if (observed.length !== mustReport) return false;
  const seen = new Set<string>();
  for (const report of observed) {
    const vm = known.byId.get(report.vm_id);
    if (!vm || seen.has(report.vm_id)) return false;
    seen.add(report.vm_id);
    if (vm.desired_state !== 'deleted' && (report.state !== vm.state || reportedReason(report) !== vm.reason)) return false;
  }
  return true;
}

/** A quiet heartbeat answered from memory: no statement; the liveness time is held for the flush as usual. */
function answerFromMemory(deps: HeartbeatDeps, known: KnownAnswer, intervalS: number): HeartbeatReply {
  const now = deps.clock.now();
  if (Date.parse(known.node.last_heartbeat_at) + storedHeartbeatMs(intervalS) <= now) {
    const at = isoTime(now);
    deps.heartbeats.record(known.node.tenant_id, known.node.node_id, at);
    known.node = { ...known.node, last_heartbeat_at: at };
  }
  return { node: known.node, vms: known.vms };
}

/** A heartbeat as the store path takes it. */
interface Beat {
  nodeId: string;
  capacity: Capacity;
  observed: readonly ObservedVm[];
  intervalS: number;
}

async function heartbeatInStore(deps: HeartbeatDeps, origin: Origin, caller: NodeCaller, { nodeId, capacity, observed, intervalS }: Beat): Promise<HeartbeatReply> {
  return inTransaction(deps.store, async (trx) => {
    const node = await callerNode(trx, caller, nodeId);
    const placed = await listVmsOnNode(trx, node.tenant_id, node.node_id, deps.store.dialect === 'postgres');
    const byId = new Map(placed.filter((vm) => vm.state !== 'pending').map((vm) => [vm.vm_id, vm]));
    const reports = new Map<string, ObservedVm>();
    for (const report of observed) {
      // vm_id tells the agent which VM the server does not place here: it ends that VM (docs/design/agent.md).
      if (!byId.has(report.vm_id)) throw new PpnError('not_found', `VM ${report.vm_id} is not placed on node ${nodeId}`, { extensions: { vm_id: report.vm_id } });
      if (reports.has(report.vm_id)) throw new PpnError('invalid_input', `VM ${report.vm_id} is reported twice`, { extensions: { field: 'vms' } });
      reports.set(report.vm_id, report);
    }
    const now = deps.clock.now();
    const changes: Partial<NodeRow> = capacityChanges(node, capacity);
    if (node.state !== 'ready') {
      changes.state = 'ready';
      await recordNodeState(deps, trx, origin, node, 'ready', 'heartbeat received');
    }
    const stale = Date.parse(node.last_heartbeat_at) + storedHeartbeatMs(intervalS) <= now;
    // The liveness time rides along when the row is written anyway; alone, it waits for the flush.
    if (Object.keys(changes).length > 0) {
      changes.last_heartbeat_at = isoTime(now);
      await updateNodeRow(trx, node, changes);
    } else if (stale) {
      deps.heartbeats.record(node.tenant_id, node.node_id, isoTime(now));
    }

    const desired: VmRow[] = [];
    for (const vm of byId.values()) {
      const report = reports.get(vm.vm_id);
      if (!report && vm.desired_state === 'deleted') {
        await removeVm(deps, trx, origin, vm, `node ${nodeId} reports it gone`);
        continue;
      }
      desired.push(await applyReport(deps, trx, origin, vm, report));
    }
    return { node: { ...node, ...(stale ? { last_heartbeat_at: isoTime(now) } : {}), ...changes }, vms: desired };
  });
}

/** The VM's state after one report (or its absence) from its node. */
async function applyReport(deps: ControlDeps, trx: Db, origin: Origin, vm: VmRow, report: ObservedVm | undefined): Promise<VmRow> {
  if (vm.desired_state === 'deleted') return vm; // stays `deleting` until the node reports it gone
  if (!report) {
    // Placed but not (or no longer) held by the node: it will create it from this reply.
    if (vm.state === 'scheduled') return vm;
    return changeVmState(deps, trx, origin, vm, { state: 'scheduled', reason: null }, 'the node does not hold it; it will create it');
  }
  return changeVmState(deps, trx, origin, vm, { state: report.state, reason: reportedReason(report) }, 'reported by its node');
}

/** The reason a report leaves on its VM: a failed VM's (the node's, or a default), otherwise none. */
function reportedReason(report: ObservedVm): string | null {
  return report.state === 'failed' ? (report.reason ?? 'failed on its node') : null;
}

function capacityChanges(node: NodeRow, c: Capacity): Partial<NodeRow> {
  const next = storedCapacity(c);
  const changes: Partial<NodeRow> = {};
  for (const key of ['cpus', 'memory_mb_total', 'disk_gb_available', 'kvm'] as const) {
    if (node[key] !== next[key]) changes[key] = next[key];
  }
  if (Math.abs(node.memory_mb_available - next.memory_mb_available) >= MEMORY_CHANGE_MB) changes.memory_mb_available = next.memory_mb_available;
  return changes;
}

async function recordNodeState(deps: ControlDeps, trx: Db, origin: Origin, node: NodeRow, to: NodeState, reason: string): Promise<void> {
  await recordEvent(deps, trx, origin, {
    event_type: 'NODE_STATE_CHANGED',
    tenant_id: ledgerTenant(node.tenant_id),
    subject_ids: { node_id: node.node_id },
    data: { state: { from: node.state, to }, reason },
  });
}

/** Stores a console tail the node uploaded for one of its VMs. */
export async function uploadConsole(deps: ControlDeps, caller: NodeCaller, nodeId: string, vmId: string, data: Buffer): Promise<void> {
  await inTransaction(deps.store, async (trx) => {
    const node = await callerNode(trx, caller, nodeId);
    const vm = (await listVmsOnNode(trx, node.tenant_id, node.node_id)).find((v) => v.vm_id === vmId && v.state !== 'pending');
    if (!vm) throw new PpnError('not_found', `VM ${vmId} is not placed on node ${nodeId}`);
    const tail = data.subarray(Math.max(0, data.length - CONSOLE_BYTES));
    await saveConsole(trx, { vm_id: vmId, tenant_id: vm.tenant_id, data: tail.toString('base64'), updated_at: isoTime(deps.clock.now()) });
  });
}

/**
 * Removes a node (SPEC §7): the VMs placed on or pinned to it become `failed` and leave it, VMs
 * already being deleted are gone with it, then NODE_REMOVED.
 */
export async function removeNode(deps: ControlDeps, origin: Origin, pool: string, nodeId: string): Promise<void> {
  await inTransaction(deps.store, async (trx) => {
    const node = await findNode(trx, pool, nodeId);
    if (!node) throw notFound('node');
    const reason = `node ${nodeId} was removed`;
    const vms = await listVmsOnNode(trx, pool, nodeId);
    for (const vm of vms) {
      if (vm.desired_state === 'deleted') await removeVm(deps, trx, origin, vm, reason);
      else await changeVmState(deps, trx, origin, vm, { state: 'failed', reason, node_id: null, node_pool: null }, reason);
    }
    await deleteNodeRow(trx, node);
    await recordEvent(deps, trx, origin, {
      event_type: 'NODE_REMOVED',
      tenant_id: ledgerTenant(pool),
      subject_ids: { node_id: nodeId },
      data: { vms_failed: vms.filter((vm) => vm.desired_state !== 'deleted').length, public_key: node.public_key },
    });
  });
}

const SWEEP: Origin = { actor: CONTROL_PLANE, requestId: null };

/**
 * The leader's sweep: a ready node whose stored heartbeat is older than SILENT_INTERVALS intervals
 * plus the flush period (a quiet heartbeat reaches the store only with the next flush) becomes
 * `unreachable`, and its VMs `unknown`. Rechecked per node inside its transaction, so a heartbeat
 * stored meanwhile (by any replica) wins.
 */
export async function sweepSilentNodes(deps: ControlDeps, intervalS = HEARTBEAT_INTERVAL_S): Promise<number> {
  const cutoff = isoTime(deps.clock.now() - SILENT_INTERVALS * intervalS * 1000 - FLUSH_MS);
  let marked = 0;
  for (const candidate of await listSilentNodes(deps.store.db, cutoff)) {
    marked += await inTransaction(deps.store, async (trx) => {
      const node = await findNode(trx, candidate.tenant_id, candidate.node_id);
      if (node?.state !== 'ready' || node.last_heartbeat_at >= cutoff) return 0;
      const silentS = Math.round((deps.clock.now() - Date.parse(node.last_heartbeat_at)) / 1000);
      await updateNodeRow(trx, node, { state: 'unreachable' });
      await recordNodeState(deps, trx, SWEEP, node, 'unreachable', `no heartbeat for ${silentS} s`);
      for (const vm of await listVmsOnNode(trx, node.tenant_id, node.node_id)) {
        // Pinned VMs not placed yet, and VMs being deleted, keep their state.
        if (vm.state === 'pending' || vm.desired_state === 'deleted') continue;
        await changeVmState(deps, trx, SWEEP, vm, { state: 'unknown' }, `node ${node.node_id} is unreachable`);
      }
      return 1;
    });
  }
  return marked;
}
