/**
 * Quiet heartbeats (docs/design/fleet.md): a heartbeat that changes nothing but the node's liveness
 * time writes nothing itself. `record` keeps the latest time per node in memory, and `flush` writes
 * every node's latest time in one transaction, which the server does at most once every FLUSH_MS
 * (as it does session use) and once more when it closes. A flush that fails keeps its times for the
 * next one.
 */
import { storeHeartbeatTimes, type HeartbeatTime } from '../store/nodes.js';
import { inTransaction, type Store } from '../store/store.js';

export class HeartbeatRecorder {
  /** Unflushed liveness times, by pool and node id. */
  private pending = new Map<string, HeartbeatTime>();

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
      await inTransaction(store, (trx) => storeHeartbeatTimes(trx, [...batch.values()]));
    } catch (error) {
      for (const row of batch.values()) this.record(row.tenant_id, row.node_id, row.at);
      throw error;
    }
  }
}
