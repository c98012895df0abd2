/**
 * What a server holds in memory about heartbeats (docs/design/fleet.md, "What a heartbeat writes"):
 *
 * - Quiet heartbeats' liveness times. A heartbeat that changes nothing but the node's liveness time
 *   writes nothing itself. `record` keeps the latest time per node, and `flush` writes every node's
 *   latest time in one transaction, which the server does at most once every FLUSH_MS (as it does
 *   session use) and once more when it closes. A flush that fails keeps its times for the next one.
 * - The last answer each node got, with the tenant's vm_generation it was read at. While the
 *   generation read on a heartbeat's request is the same, nothing about the node or its VMs has
 *   changed in the store (every such write moves it, on any replica), so a heartbeat that reports
 *   what that answer already says is answered from memory, without a statement.
 */
import { storeHeartbeatTimes, type HeartbeatTime, type NodeRow } from '../store/nodes.js';
import { inTransaction, type Store } from '../store/store.js';
import type { VmRow } from '../store/vms.js';

/** A node's last answer: its row and the VMs it was told to run, as of `generation`. */
export interface KnownAnswer {
  generation: number;
  node: NodeRow;
  vms: VmRow[];
  byId: Map<string, VmRow>;
}

/** Past this many nodes' answers, all are dropped and refilled by the next heartbeats. */
const MAX_ANSWERS = 100_000;

export class HeartbeatRecorder {
  /** Heartbeats answered since the server started: from memory (quiet), or through the store. */
  readonly answered = { memory: 0, store: 0 };
  /** Unflushed liveness times, by pool and node id. */
  private pending = new Map<string, HeartbeatTime>();
  private answers = new Map<string, KnownAnswer>();

  /** Notes that the node was heard from at `at` (RFC 3339). */
  record(pool: string, nodeId: string, at: string): void {
    const key = `${pool} ${nodeId}`;
    const row = this.pending.get(key);
    if (row && row.at >= at) return;
    this.pending.set(key, { tenant_id: pool, node_id: nodeId, at });
  }

  /** Writes every time recorded since the last flush in one transaction; does nothing when idle. */
  async flush(store: Store): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    try {
      await inTransaction(store, (trx) => storeHeartbeatTimes(trx, store.dialect, [...batch.values()]));
    } catch (error) {
      for (const row of batch.values()) this.record(row.tenant_id, row.node_id, row.at);
      throw error;
    }
  }

  lastAnswer(pool: string, nodeId: string): KnownAnswer | undefined {
    return this.answers.get(`${pool} ${nodeId}`);
  }

  rememberAnswer(pool: string, nodeId: string, generation: number, node: NodeRow, vms: VmRow[]): void {
    if (this.answers.size >= MAX_ANSWERS) this.answers.clear();
    this.answers.set(`${pool} ${nodeId}`, { generation, node, vms, byId: new Map(vms.map((vm) => [vm.vm_id, vm])) });
  }
}
