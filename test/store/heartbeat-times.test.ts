/**
 * The flush of quiet heartbeats' liveness times (storeHeartbeatTimes, src/store/nodes.ts), one
 * statement on either store: every node in the flush moves forward to its time, a node whose
 * stored time is newer keeps it, a node that is gone is skipped without error, other nodes and
 * other pools are untouched, and ids with quotes, backslashes and non-ASCII match exactly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNode, insertNode, storeHeartbeatTimes, type NodeRow } from '../../src/store/nodes.js';
import { inTransaction } from '../../src/store/store.js';
import { startHarness, type Harness } from '../support/harness.js';

const TENANT = 'beating';
const OTHER = 'beating-other';
const ODD_ID = `n'ode "odd" \\ ✓ 名前`;
const T0 = '2026-06-01T00:00:00.000Z';

function nodeRow(tenantId: string, nodeId: string, heardAt: string): NodeRow {
  return {
    tenant_id: tenantId,
    node_id: nodeId,
    public_key: `key-${tenantId}-${nodeId}`,
    state: 'ready',
    cpus: 8,
    memory_mb_total: 16_384,
    memory_mb_available: 12_000,
    disk_gb_available: 100,
    kvm: 1,
    last_heartbeat_at: heardAt,
    enrolled_at: T0,
    enrolled_by: 'tok-test',
  };
}

describe('the heartbeat-time flush statement', () => {
  let h: Harness;
  const heardAt = async (tenantId: string, nodeId: string) => (await findNode(h.store.db, tenantId, nodeId))?.last_heartbeat_at;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(TENANT);
    await h.createTenant(OTHER);
    await inTransaction(h.store, async (trx) => {
      for (let i = 0; i < 120; i++) await insertNode(trx, nodeRow(TENANT, `node-${i}`, T0));
      await insertNode(trx, nodeRow(TENANT, ODD_ID, T0));
      await insertNode(trx, nodeRow(TENANT, 'ahead', '2026-06-01T00:10:00.000Z'));
      await insertNode(trx, nodeRow(TENANT, 'not-in-flush', T0));
      await insertNode(trx, nodeRow(OTHER, 'node-0', T0));
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('moves every node of the flush forward in one call, and nothing else', async () => {
    const later = '2026-06-01T00:05:00.000Z';
    const times = [
      ...Array.from({ length: 120 }, (_, i) => ({ tenant_id: TENANT, node_id: `node-${i}`, at: later })),
      { tenant_id: TENANT, node_id: ODD_ID, at: later },
      { tenant_id: TENANT, node_id: 'ahead', at: later },
      { tenant_id: TENANT, node_id: 'gone', at: later },
    ];
    await inTransaction(h.store, (trx) => storeHeartbeatTimes(trx, h.store.dialect, times));
    for (let i = 0; i < 120; i++) expect(await heardAt(TENANT, `node-${i}`)).toBe(later);
    expect(await heardAt(TENANT, ODD_ID)).toBe(later);
    // A newer stored time is kept; a node not in the flush and another pool's node of the same id are untouched.
    expect(await heardAt(TENANT, 'ahead')).toBe('2026-06-01T00:10:00.000Z');
    expect(await heardAt(TENANT, 'not-in-flush')).toBe(T0);
    expect(await heardAt(OTHER, 'node-0')).toBe(T0);
    expect(await findNode(h.store.db, TENANT, 'gone')).toBeUndefined();
  });

  it('never moves a time back: an older flush arriving second changes nothing', async () => {
    await inTransaction(h.store, (trx) => storeHeartbeatTimes(trx, h.store.dialect, [{ tenant_id: TENANT, node_id: 'node-1', at: '2026-06-01T00:07:00.000Z' }]));
    await inTransaction(h.store, (trx) => storeHeartbeatTimes(trx, h.store.dialect, [{ tenant_id: TENANT, node_id: 'node-1', at: '2026-06-01T00:06:00.000Z' }]));
    expect(await heardAt(TENANT, 'node-1')).toBe('2026-06-01T00:07:00.000Z');
  });

  it('does nothing for an empty flush', async () => {
    await inTransaction(h.store, (trx) => storeHeartbeatTimes(trx, h.store.dialect, []));
    expect(await heardAt(TENANT, 'node-2')).toBe('2026-06-01T00:05:00.000Z');
  });
});
