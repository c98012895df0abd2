/**
 * The stored tree, on both stores: requests only sequence entries, and the integrator adds them to
 * the tree in batches. Whatever the batch size, the tree it builds has the root recomputed from the
 * stored entry lines at every size (the reference in src/ledger/merkle.ts), its proofs verify, it
 * never covers past a missing index, and integrators running at once do not double a node. A store
 * whose entries have no tree at all (written before it existed) passes the start-up check with
 * them sequenced, and the integrator builds their tree.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashLeaf, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../src/ledger/merkle.js';
import { integrateBatch, integrateEntries, readConsistencyProof, readInclusionProof, readRoot, storedTreeSize } from '../../src/store/ledger-tree.js';
import { buildApp, ledgerProblemOf } from '../../src/api/app.js';
import { insertEntryRow, startHarness, type Harness } from '../support/harness.js';

/** Removes the whole tree, its WORM triggers dropped first (as only an operator could). */
async function dropTree(h: Harness): Promise<void> {
  if (h.store.dialect === 'sqlite') {
    await sql`drop trigger if exists ledger_nodes_no_delete`.execute(h.store.db);
  } else {
    await sql`drop trigger if exists ledger_nodes_worm on ledger_nodes`.execute(h.store.db);
  }
  await h.store.db.deleteFrom('ledger_nodes').execute();
}

describe('the stored ledger tree', () => {
  let h: Harness;
  let leaves: Buffer[];
  let integratedBefore: number;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant('tree-co');
    const { token } = await h.issueToken('tree-co', 'tenant:input');
    integratedBefore = await storedTreeSize(h.store.db);
    // Straight to the app: the harness's request() would stand in for the leader and integrate.
    for (let i = 0; i < 20; i++) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/vms', headers: { authorization: `Bearer ${token}` }, payload: { name: `vm-${i}` } });
      // Ten are created and ten refused (max_vms 10): each writes an entry either way.
      expect([201, 429], res.body).toContain(res.statusCode);
    }
    const rows = await h.store.db.selectFrom('ledger_entries').select(['idx', 'entry']).orderBy('idx').execute();
    leaves = rows.map((r) => hashLeaf(Buffer.from(r.entry)));
  });
  afterAll(async () => {
    await h.close();
  });

  it('a request sequences its entry only; the integrator adds every sequenced entry to the tree', async () => {
    expect(leaves.length).toBeGreaterThan(20);
    // The app runs no background work here, so nothing has integrated the 20 creates' entries yet.
    expect(await storedTreeSize(h.store.db)).toBe(integratedBefore);
    expect(leaves.length - integratedBefore).toBe(20);
    expect(await integrateEntries(h.store)).toBe(20);
    expect(await storedTreeSize(h.store.db)).toBe(leaves.length);
    expect(await integrateEntries(h.store)).toBe(0);
    for (const size of [1, 2, 7, 16, leaves.length]) {
      expect((await readRoot(h.store.db, size)).equals(rootFromLeafHashes(leaves.slice(0, size))), `size ${size}`).toBe(true);
    }
  });

  it('serves inclusion and consistency proofs that verify against those roots', async () => {
    const n = leaves.length;
    const root = rootFromLeafHashes(leaves);
    for (const index of [0, 1, 5, n - 1]) {
      expect(verifyInclusion(index, n, leaves[index]!, await readInclusionProof(h.store.db, index, n), root)).toBe(true);
    }
    for (const m of [1, 3, 8, n - 1]) {
      const proof = await readConsistencyProof(h.store.db, m, n);
      expect(verifyConsistency(m, n, rootFromLeafHashes(leaves.slice(0, m)), root, proof)).toBe(true);
    }
  });

  it('refuses to change or delete tree nodes', async () => {
    await expect(h.store.db.deleteFrom('ledger_nodes').execute()).rejects.toThrow(/write-once/);
    await expect(h.store.db.updateTable('ledger_nodes').set({ hash: '00' }).execute()).rejects.toThrow(/write-once/);
  });

  it('builds the same tree as the reference at every size, whatever the batch size', async () => {
    for (const batch of [1, 2, 3, 5, 8, 13, 1000]) {
      await dropTree(h);
      let integrated = 0;
      for (;;) {
        const added = await integrateBatch(h.store, batch);
        expect(added).toBeLessThanOrEqual(batch);
        if (added === 0) break;
        integrated += added;
        // Each batch leaves a whole tree of the entries so far.
        expect((await readRoot(h.store.db, integrated)).equals(rootFromLeafHashes(leaves.slice(0, integrated))), `batch ${batch}, size ${integrated}`).toBe(true);
      }
      expect(integrated).toBe(leaves.length);
      for (let size = 1; size <= leaves.length; size++) {
        expect((await readRoot(h.store.db, size)).equals(rootFromLeafHashes(leaves.slice(0, size))), `batch ${batch}, size ${size}`).toBe(true);
      }
    }
  });

  it('integrators running at once take turns: each leaf is added once', async () => {
    await dropTree(h);
    const added = await Promise.all([integrateEntries(h.store, 3), integrateEntries(h.store, 5), integrateEntries(h.store, 7)]);
    expect(added.reduce((a, b) => a + b, 0)).toBe(leaves.length);
    expect((await readRoot(h.store.db, leaves.length)).equals(rootFromLeafHashes(leaves))).toBe(true);
  });

  it('a server starts on entries that have no tree at all, and the integrator builds it', async () => {
    await dropTree(h);
    // No checkpoint and no ledger.state: the entries are sequenced, not integrated, which is no problem.
    const app = await buildApp({ store: h.store, keyring: h.keyring, clock: h.clock });
    expect(ledgerProblemOf(app)).toBeNull();
    await app.close();
    expect(await storedTreeSize(h.store.db)).toBe(0);
    expect(await integrateEntries(h.store)).toBe(leaves.length);
    expect((await readRoot(h.store.db, leaves.length)).equals(rootFromLeafHashes(leaves))).toBe(true);
  });

  it('never integrates past a missing index', async () => {
    // Gapless sequencing never leaves one; a database writer can.
    const n = leaves.length;
    const line = JSON.stringify({ index: n + 1 });
    await insertEntryRow(h.store, n + 1, line, null);
    expect(await integrateEntries(h.store)).toBe(0);
    expect(await storedTreeSize(h.store.db)).toBe(n);
  });
});
