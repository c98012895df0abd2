/** Fleet node rows and VM consoles (SPEC §7). Nodes are keyed by pool (a tenant id or SHARED_POOL) and node id. */
import { sql } from 'kysely';
import type { Dialect } from './dialect.js';
import type { Db, NodeState, NodesTable, VmConsolesTable } from './schema.js';
import { tenantRowWritten } from './tenants.js';

export type NodeRow = NodesTable;
export type ConsoleRow = VmConsolesTable;

/** The pool of the platform's shared nodes: '*' can never be a tenant id. */
export const SHARED_POOL = '*';

/**
 * Every write of a tenant's node row but its liveness time (and its return to ready, see
 * updateNodeRow) moves the tenant's vm_generation, as VM writes do (src/store/vms.ts): a server answers a quiet heartbeat from memory while the generation is unchanged
 * (src/control/heartbeats.ts), so whatever another replica or the sweep changes about the node or
 * its VMs must move it. The shared pool has no tenant row and no such answers.
 */
async function markNodeChanged(trx: Db, pool: string): Promise<void> {
  if (pool === SHARED_POOL) return;
  tenantRowWritten(pool);
  await trx
    .updateTable('tenants')
    .set((eb) => ({ vm_generation: eb('vm_generation', '+', 1) }))
    .where('tenant_id', '=', pool)
    .execute();
}

export async function insertNode(trx: Db, row: NodeRow): Promise<void> {
  await trx.insertInto('nodes').values(row).execute();
  await markNodeChanged(trx, row.tenant_id);
}

export async function findNode(db: Db, pool: string, nodeId: string): Promise<NodeRow | undefined> {
  return db.selectFrom('nodes').selectAll().where('tenant_id', '=', pool).where('node_id', '=', nodeId).executeTakeFirst();
}

/** Reads a node and, on PostgreSQL, locks its row until the transaction ends (placements on it are serialised). */
export async function lockNode(trx: Db, dialect: Dialect, pool: string, nodeId: string): Promise<NodeRow | undefined> {
  return trx
    .selectFrom('nodes')
    .selectAll()
    .where('tenant_id', '=', pool)
    .where('node_id', '=', nodeId)
    .$if(dialect === 'postgres', (q) => q.forUpdate())
    .executeTakeFirst();
}

export async function findNodeByKey(db: Db, publicKey: string): Promise<NodeRow | undefined> {
  return db.selectFrom('nodes').selectAll().where('public_key', '=', publicKey).executeTakeFirst();
}

/** One pool's nodes (null: every pool's) in (pool, node id) order, after the cursor's node. */
export async function listNodeRows(db: Db, pool: string | null, after: { pool: string; nodeId: string } | undefined, limit: number): Promise<NodeRow[]> {
  return db
    .selectFrom('nodes')
    .selectAll()
    .$if(pool !== null, (q) => q.where('tenant_id', '=', pool!))
    .$if(after !== undefined, (q) =>
      q.where((eb) => eb.or([eb('tenant_id', '>', after!.pool), eb.and([eb('tenant_id', '=', after!.pool), eb('node_id', '>', after!.nodeId)])])),
    )
    .orderBy('tenant_id')
    .orderBy('node_id')
    .limit(limit)
    .execute();
}

export async function listNodesInState(db: Db, state: NodeState): Promise<NodeRow[]> {
  return db.selectFrom('nodes').selectAll().where('state', '=', state).execute();
}

/** Ready nodes whose stored heartbeat is older than `before` (RFC 3339): the sweep's candidates. */
export async function listSilentNodes(db: Db, before: string): Promise<NodeRow[]> {
  return db.selectFrom('nodes').selectAll().where('state', '=', 'ready').where('last_heartbeat_at', '<', before).execute();
}

export async function updateNodeRow(trx: Db, node: Pick<NodeRow, 'tenant_id' | 'node_id'>, changes: Partial<NodeRow>): Promise<void> {
  await trx.updateTable('nodes').set(changes).where('tenant_id', '=', node.tenant_id).where('node_id', '=', node.node_id).execute();
  // A return to ready (with its time) invalidates no kept answer: every answer kept from before the
  // node went unreachable was invalidated then. Not moving the generation here spares the tenant's
  // other nodes a read each time one node comes back.
  const returnOnly = Object.keys(changes).every((key) => key === 'last_heartbeat_at' || (key === 'state' && changes.state === 'ready'));
  if (!returnOnly) await markNodeChanged(trx, node.tenant_id);
}

/** A node's liveness time as a quiet heartbeat left it (src/control/heartbeats.ts). */
export interface HeartbeatTime {
  tenant_id: string;
  node_id: string;
  at: string;
}

/**
 * Moves each node's last_heartbeat_at forward to its time; a newer stored time, or a node gone, is
 * left as it is. One statement moves them all, the times passed as one JSON array of
 * `[pool, node id, time]`: a flush of 1,000 nodes' times holds about 50 a second, and a statement a
 * node held SQLite's event loop for milliseconds and cost PostgreSQL a round trip each. The times
 * must have distinct keys (a flush's do), since one UPDATE … FROM moves a row once.
 */
export async function storeHeartbeatTimes(trx: Db, dialect: Dialect, times: readonly HeartbeatTime[]): Promise<void> {
  if (times.length === 0) return;
  const json = JSON.stringify(times.map((t) => [t.tenant_id, t.node_id, t.at]));
  // The array's rows as `t.value`: SQLite's json_each has that column; PostgreSQL names it in the alias.
  const rows = dialect === 'sqlite' ? sql`json_each(${json}) as t` : sql`json_array_elements(${json}::json) as t(value)`;
  await sql`update nodes set last_heartbeat_at = t.value ->> 2 from ${rows}
    where nodes.tenant_id = t.value ->> 0 and nodes.node_id = t.value ->> 1 and nodes.last_heartbeat_at < t.value ->> 2`.execute(trx);
}

export async function deleteNodeRow(trx: Db, node: Pick<NodeRow, 'tenant_id' | 'node_id'>): Promise<void> {
  await trx.deleteFrom('nodes').where('tenant_id', '=', node.tenant_id).where('node_id', '=', node.node_id).execute();
  await markNodeChanged(trx, node.tenant_id);
}

/** Stores a VM's console tail, replacing the previous one. */
export async function saveConsole(trx: Db, row: ConsoleRow): Promise<void> {
  await trx
    .insertInto('vm_consoles')
    .values(row)
    .onConflict((oc) => oc.column('vm_id').doUpdateSet({ data: row.data, updated_at: row.updated_at }))
    .execute();
}

export async function findConsole(db: Db, vmId: string): Promise<ConsoleRow | undefined> {
  return db.selectFrom('vm_consoles').selectAll().where('vm_id', '=', vmId).executeTakeFirst();
}
