/**
 * Group commit (docs/design/store.md): writes that arrive together share one transaction and one
 * COMMIT, each in its own savepoint. At the control layer over the real store (SQLite, or
 * PostgreSQL with PPN_TEST_STORE=postgres). A write that waits on a gate holds a batch open, so the
 * writes issued meanwhile are known to form the next batch.
 */
import { sql } from 'kysely';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeIdSource } from '../../src/clock.js';
import type { ControlDeps, Origin } from '../../src/control/context.js';
import { createVm, type NewVm } from '../../src/control/vms.js';
import { type PpnError } from '../../src/errors.js';
import { LOCAL_OPERATOR } from '../../src/ledger/entry.js';
import { groupCommitStats, setBatchBudget } from '../../src/store/group-commit.js';
import { inTransaction } from '../../src/store/store.js';
import { startHarness, type Harness } from '../support/harness.js';

const origin: Origin = { actor: LOCAL_OPERATOR, requestId: null };

function vm(name: string, disk_gb = 1): NewVm {
  return { name, vcpus: 1, memory_mb: 512, disk_gb, image: null, node_id: null };
}

describe('group commit', () => {
  let h: Harness;
  let deps: ControlDeps;
  let tenantSerial = 0;

  beforeAll(async () => {
    h = await startHarness();
    deps = { store: h.store, clock: h.clock, ids: makeIdSource(h.clock) };
    // The writes a test queues together must form one batch however slow the machine is.
    setBatchBudget(h.store.db, Number.POSITIVE_INFINITY);
    // A deferred constraint is checked at COMMIT: a write that breaks it makes the whole COMMIT fail.
    await sql`create table commit_probe (id integer primary key, parent integer references commit_probe (id) deferrable initially deferred)`.execute(h.store.db);
  });
  afterAll(() => h.close());

  const commits = () => groupCommitStats(h.store.db).commits;

  /** Holds a batch open until `release` is called; writes issued meanwhile queue for the next batch. */
  async function holdBatch(): Promise<{ release: () => void; done: Promise<void> }> {
    let release!: () => void;
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    const gate = new Promise<void>((resolve) => (release = resolve));
    const done = inTransaction(h.store, () => {
      started();
      return gate;
    });
    await running;
    return { release, done };
  }

  async function newTenant(limits: Record<string, unknown>): Promise<string> {
    const tenantId = `batch-${++tenantSerial}`;
    await h.createTenant(tenantId, { max_vms: 1000, storage_quota_gb: 100_000, ...limits });
    return tenantId;
  }

  async function ledgerIsGapless(): Promise<void> {
    const indexes = (await h.ledgerLines()).map((e) => e.index);
    expect(indexes).toEqual(indexes.map((_, i) => i));
  }

  it('writes queued behind a running batch share one commit, and each gets its own answer: created, refused over quota, name conflict, failed', async () => {
    const tenantId = await newTenant({ max_vms: 3 });
    const before = commits();
    const ledgerBefore = await h.ledgerCount();
    const held = await holdBatch();
    const outcomes = Promise.allSettled([
      createVm(deps, origin, tenantId, vm('a'), null),
      createVm(deps, origin, tenantId, vm('b'), null),
      // Sees 'a' from earlier in the same, uncommitted batch.
      createVm(deps, origin, tenantId, vm('a'), null),
      inTransaction(h.store, async (trx) => {
        await sql`insert into commit_probe (id, parent) values (1, null)`.execute(trx);
        throw new Error('this write fails after writing');
      }),
      createVm(deps, origin, tenantId, vm('c'), null),
      // The fourth VM: refused, since a, b and c are counted although not yet committed.
      createVm(deps, origin, tenantId, vm('d'), null),
    ]);
    held.release();
    await held.done;
    const [a, b, conflict, failed, c, refused] = await outcomes;

    expect(commits() - before).toBe(2);
    for (const created of [a, b, c]) expect(created).toMatchObject({ status: 'fulfilled', value: { tenant_id: tenantId } });
    expect(conflict).toMatchObject({ status: 'rejected', reason: { code: 'conflict' } });
    expect(failed).toMatchObject({ status: 'rejected', reason: { message: 'this write fails after writing' } });
    expect(refused).toMatchObject({ status: 'rejected', reason: { code: 'quota_exceeded' } });

    const names = await h.store.db.selectFrom('vms').select('name').where('tenant_id', '=', tenantId).orderBy('name').execute();
    expect(names.map((r) => r.name)).toEqual(['a', 'b', 'c']);
    expect((await sql`select id from commit_probe`.execute(h.store.db)).rows).toEqual([]);
    // Three VM_CREATED and one VM_CREATE_DENIED: the conflict and the failed write left nothing.
    expect(await h.ledgerCount()).toBe(ledgerBefore + 4);
    const denied = (refused as PromiseRejectedResult).reason as PpnError;
    const entry = (await h.ledgerLines({ afterIndex: (denied.extensions.ledger_index as number) - 1, limit: 1 }))[0];
    expect(entry).toMatchObject({ event_type: 'VM_CREATE_DENIED', tenant_id: tenantId });
    await ledgerIsGapless();
  });

  it('a COMMIT that fails fails every write of the batch: none is answered as a success, none is stored', async () => {
    const tenantId = await newTenant({});
    const ledgerBefore = await h.ledgerCount();
    const held = await holdBatch();
    const outcomes = Promise.allSettled([
      createVm(deps, origin, tenantId, vm('x'), null),
      // Breaks the deferred constraint: the statement succeeds, the COMMIT will not.
      inTransaction(h.store, async (trx) => {
        await sql`insert into commit_probe (id, parent) values (2, 999)`.execute(trx);
      }),
      createVm(deps, origin, tenantId, vm('y'), null),
    ]);
    held.release();
    await held.done;
    for (const outcome of await outcomes) expect(outcome.status).toBe('rejected');

    expect(await h.store.db.selectFrom('vms').select('vm_id').where('tenant_id', '=', tenantId).execute()).toEqual([]);
    expect((await sql`select id from commit_probe`.execute(h.store.db)).rows).toEqual([]);
    expect(await h.ledgerCount()).toBe(ledgerBefore);
    // The batcher goes on: the next write commits.
    await expect(createVm(deps, origin, tenantId, vm('z'), null)).resolves.toMatchObject({ name: 'z' });
    await ledgerIsGapless();
  });

  it('a batch that runs past its time budget commits what it ran and leaves the rest, in order, to the next batch', async () => {
    const tenantId = await newTenant({ max_vms: 2 });
    setBatchBudget(h.store.db, 0);
    try {
      const before = commits();
      const held = await holdBatch();
      const outcomes = Promise.allSettled(['p', 'q', 'r'].map((name) => createVm(deps, origin, tenantId, vm(name), null)));
      held.release();
      await held.done;
      // With no budget, each batch runs one write: still in arrival order, so the third is refused.
      expect((await outcomes).map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
      expect(commits() - before).toBe(4);
    } finally {
      setBatchBudget(h.store.db, Number.POSITIVE_INFINITY);
    }
    await ledgerIsGapless();
  });

  it('concurrent creates land in fewer commits than requests, and admit exactly what a sequential model admits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          maxVms: fc.integer({ min: 0, max: 40 }),
          storage: fc.integer({ min: 0, max: 200 }),
          disks: fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 60 }),
        }),
        async ({ maxVms, storage, disks }) => {
          const tenantId = await newTenant({ max_vms: maxVms, storage_quota_gb: storage });
          const before = commits();
          const outcomes = await Promise.allSettled(disks.map((disk, i) => createVm(deps, origin, tenantId, vm(`vm-${i}`, disk), null)));

          // Batches run their writes in the order they were issued, so that order is the model's.
          let vms = 0;
          let used = 0;
          const expected = disks.map((disk) => {
            const admit = vms + 1 <= maxVms && used + disk <= storage;
            if (admit) {
              vms += 1;
              used += disk;
            }
            return admit;
          });
          expect(outcomes.map((o) => o.status === 'fulfilled')).toEqual(expected);
          for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as PpnError).code).toBe('quota_exceeded');
          const stored = await h.store.db.selectFrom('vms').select('disk_gb').where('tenant_id', '=', tenantId).execute();
          expect(stored.length).toBe(vms);
          expect(stored.reduce((sum, r) => sum + r.disk_gb, 0)).toBe(used);
          if (disks.length >= 3) expect(commits() - before).toBeLessThan(disks.length);
        },
      ),
      { numRuns: 25 },
    );
    await ledgerIsGapless();
  });
});
