/**
 * The stored tree covers exactly the committed entries, on both stores: its root equals the root
 * recomputed from the stored entry lines, its proofs verify, and a store whose entries predate the
 * tree (and no checkpoint, and nothing remembered) gets it built when a server starts on it.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashLeaf, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../src/ledger/merkle.js';
import { readConsistencyProof, readInclusionProof, readRoot, storedTreeSize } from '../../src/store/ledger-tree.js';
import { buildApp, ledgerProblemOf } from '../../src/api/app.js';
import { startHarness, type Harness } from '../support/harness.js';

describe('the stored ledger tree', () => {
  let h: Harness;
  let leaves: Buffer[];

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant('tree-co');
    const { token } = await h.issueToken('tree-co', 'tenant:input');
    for (let i = 0; i < 20; i++) await h.request('POST', '/v1/vms', { token, body: { name: `vm-${i}` } });
    const rows = await h.store.db.selectFrom('ledger_entries').select(['idx', 'entry']).orderBy('idx').execute();
    leaves = rows.map((r) => hashLeaf(Buffer.from(r.entry)));
  });
  afterAll(async () => {
    await h.close();
  });

  it('has one leaf per committed entry and the root recomputed from the stored lines', async () => {
    expect(leaves.length).toBeGreaterThan(20);
    expect(await storedTreeSize(h.store.db)).toBe(leaves.length);
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

  it('builds the tree at start for entries written before it existed', async () => {
    // Simulate an older store: remove the tree (triggers dropped first, as only an operator could).
    if (h.store.dialect === 'sqlite') {
      await sql`drop trigger ledger_nodes_no_delete`.execute(h.store.db);
    } else {
      await sql`drop trigger ledger_nodes_worm on ledger_nodes`.execute(h.store.db);
    }
    await h.store.db.deleteFrom('ledger_nodes').execute();
    expect(await storedTreeSize(h.store.db)).toBe(0);
    // No checkpoint and no ledger.state: the server's start-up builds the tree, then checks it.
    const app = await buildApp({ store: h.store, keyring: h.keyring, clock: h.clock });
    expect(ledgerProblemOf(app)).toBeNull();
    await app.close();
    expect(await storedTreeSize(h.store.db)).toBe(leaves.length);
    expect((await readRoot(h.store.db, leaves.length)).equals(rootFromLeafHashes(leaves))).toBe(true);
  });
});
