/**
 * The whole-ledger check (src/control/ledger-check.ts), on both stores, with fast-check choosing the
 * tampering: whichever entry, stored tree node or checkpoint is altered, the check fails and names
 * the index where the alteration starts; untouched, it passes. Each run tampers inside a transaction
 * (WORM triggers dropped in it too) that is rolled back, so every run starts from the same ledger.
 */
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeIdSource, ManualClock } from '../../src/clock.js';
import { LedgerProblemError, signPendingCheckpoint } from '../../src/control/checkpoints.js';
import { checkExtension, checkLedger, type LedgerCheck } from '../../src/control/ledger-check.js';
import type { TreeHead } from '../../src/ledger/checkpoint.js';
import { readRoot } from '../../src/store/ledger-tree.js';
import { loadLedgerSigner } from '../../src/config/data-dir.js';
import { parseVerifierKey, signNote, type VerifierKey } from '../../src/ledger/note.js';
import { appendEntry } from '../../src/store/ledger.js';
import type { Db } from '../../src/store/schema.js';
import { inTransaction, type Store } from '../../src/store/store.js';
import { startHarness, type Harness } from '../support/harness.js';
import { generateKeyPair } from '../../src/tokens/keys.js';

/** Entries in the ledger under test, and the sizes at which checkpoints are signed. */
const SIZE = 45;
const CHECKPOINT_SIZES = [1, 7, 16, 30, SIZE];

class Rollback extends Error {}

/** Runs `tamper` and then the check inside one transaction, and rolls it all back. */
function checkTampered(store: Store, key: VerifierKey, tamper: (trx: Db) => Promise<void>): Promise<LedgerCheck> {
  return tamperedThen(store, tamper, (tampered) => checkLedger(tampered, key));
}

/** Runs `tamper` and then `check` on the tampered store inside one transaction, and rolls it all back. */
async function tamperedThen<T>(store: Store, tamper: (trx: Db) => Promise<void>, check: (tampered: Store) => Promise<T>): Promise<T> {
  let result: T | undefined;
  await inTransaction(store, async (trx) => {
    for (const table of ['ledger_entries', 'ledger_nodes', 'ledger_checkpoints']) {
      if (store.dialect === 'sqlite') {
        await sql.raw(`drop trigger ${table}_no_update`).execute(trx);
        await sql.raw(`drop trigger ${table}_no_delete`).execute(trx);
      } else {
        await sql.raw(`drop trigger ${table}_worm on ${table}`).execute(trx);
      }
    }
    await tamper(trx);
    result = await check({ ...store, db: trx });
    throw new Rollback();
  }).catch((error: unknown) => {
    if (!(error instanceof Rollback)) throw error;
  });
  return result!;
}

/** Sequences a VM_CREATED entry of the tenant under test in `trx`. */
function appendVmEntry(trx: Db, store: Store, subjectIds: { vm_id?: string }, data: Record<string, unknown>, ts: string): Promise<number> {
  const actor = { token_id: null, subject: 'test', scope: [] };
  return appendEntry(trx, store.dialect, { event_type: 'VM_CREATED', tenant_id: 'check-co', actor, request_id: null, subject_ids: subjectIds, data }, () => ts);
}

/** The nodes of a tree of SIZE leaves: (level, index) of every perfect subtree. */
function storedNodes(): { level: number; index: number }[] {
  const nodes = [];
  for (let level = 0, width = 1; width <= SIZE; level++, width *= 2) {
    for (let index = 0; (index + 1) * width <= SIZE; index++) nodes.push({ level, index });
  }
  return nodes;
}

describe('the whole-ledger check', () => {
  let h: Harness;
  let key: VerifierKey;

  beforeAll(async () => {
    h = await startHarness();
    const signer = loadLedgerSigner(h.dataDir);
    key = parseVerifierKey(signer.verifierKey);
    const clock = new ManualClock(Date.parse('2026-11-28T00:00:00Z'));
    const ids = makeIdSource(clock);
    // The harness wrote one entry already (its admin token): the first checkpoint covers it.
    await signPendingCheckpoint(h.store, signer, clock);
    for (let index = 1; index < SIZE; index++) {
      await inTransaction(h.store, (trx) => appendVmEntry(trx, h.store, { vm_id: ids('vm') }, { n: index }, new Date(clock.now()).toISOString()));
      if (CHECKPOINT_SIZES.includes(index + 1)) await signPendingCheckpoint(h.store, signer, clock);
    }
  });
  afterAll(async () => {
    await h.close();
  });

  it('passes on the untouched ledger, with every checkpoint', async () => {
    const result = await checkLedger(h.store, key);
    expect(result).toMatchObject({ size: SIZE, checkpoints: CHECKPOINT_SIZES.length, latestCheckpoint: SIZE, problem: null });
  });

  it('reads pages of the size asked (the scrub reads small ones) and recomputes the same result', async () => {
    const pages: number[] = [];
    const result = await checkLedger(h.store, key, { pageSize: 7, pace: async (entries) => void pages.push(entries) });
    expect(result).toMatchObject({ size: SIZE, checkpoints: CHECKPOINT_SIZES.length, latestCheckpoint: SIZE, problem: null });
    expect(result.root).toEqual((await checkLedger(h.store, key)).root);
    expect(pages.reduce((a, b) => a + b, 0)).toBe(SIZE);
    expect(Math.max(...pages)).toBe(7);
  });

  it('entries past the tree and every checkpoint are sequenced, not yet integrated: not a problem', async () => {
    const result = await checkTampered(h.store, key, async (trx) => {
      for (let n = 0; n < 3; n++) await appendVmEntry(trx, h.store, {}, { late: n }, '2026-11-28T00:00:01.000Z');
    });
    expect(result).toMatchObject({ size: SIZE + 3, latestCheckpoint: SIZE, problem: null });
  });

  it('names a leaf missing under a checkpoint by its entry, though entries past the tree are fine', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: SIZE - 1 }), async (index) => {
        // The tree cut back below the latest checkpoint: the entries it no longer covers look sequenced.
        const result = await checkTampered(h.store, key, async (trx) => {
          await trx.deleteFrom('ledger_nodes').where('level', '=', 0).where('idx', '>=', index).execute();
        });
        expect(result.problem).toEqual({ index, what: `the tree has no leaf for entry ${index}` });
      }),
      { numRuns: 10 },
    );
  });

  it('names a changed entry by its own index', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: SIZE - 1 }), async (index) => {
        const result = await checkTampered(h.store, key, async (trx) => {
          await trx
            .updateTable('ledger_entries')
            .set({ entry: sql`replace(entry, '"data":{', '"data":{"x":1,')` })
            .where('idx', '=', index)
            .execute();
        });
        expect(result.problem?.index).toBe(index);
        expect(result.problem?.what).toContain(`entry ${index}'s bytes`);
      }),
      { numRuns: 15 },
    );
  });

  it('names a changed tree node by the first entry under it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...storedNodes()), async ({ level, index }) => {
        const result = await checkTampered(h.store, key, async (trx) => {
          await trx
            .updateTable('ledger_nodes')
            .set({ hash: 'ab'.repeat(32) })
            .where('level', '=', level)
            .where('idx', '=', index)
            .execute();
        });
        expect(result.problem?.index).toBe(index * 2 ** level);
      }),
      { numRuns: 20 },
    );
  });

  it('names a tree node whose stored hash is not 64 hex digits by the first entry under it', async () => {
    // The last two keep the right hash in front: its first 32 bytes decode to the right hash.
    const malformed = [
      '',
      'ab'.repeat(31),
      'ab'.repeat(33),
      'zz'.repeat(32),
      `${'ab'.repeat(31)}a `,
      'ab'.repeat(16),
      sql<string>`hash || 'ab'`,
      sql<string>`hash || 'zz'`,
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...storedNodes()), fc.constantFrom(...malformed), async ({ level, index }, hash) => {
        const result = await checkTampered(h.store, key, async (trx) => {
          await trx.updateTable('ledger_nodes').set({ hash }).where('level', '=', level).where('idx', '=', index).execute();
        });
        expect(result.problem?.index).toBe(index * 2 ** level);
      }),
      { numRuns: 30 },
    );
  });

  it('names the first of two swapped entries', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 0, max: SIZE - 1 }), { minLength: 2, maxLength: 2 }), async ([a, b]) => {
        const result = await checkTampered(h.store, key, async (trx) => {
          const rows = await trx.selectFrom('ledger_entries').select(['idx', 'entry']).where('idx', 'in', [a!, b!]).execute();
          const lineOf = (i: number) => rows.find((r) => Number(r.idx) === i)!.entry;
          const [lineA, lineB] = [lineOf(a!), lineOf(b!)];
          await trx.updateTable('ledger_entries').set({ entry: lineB }).where('idx', '=', a!).execute();
          await trx.updateTable('ledger_entries').set({ entry: lineA }).where('idx', '=', b!).execute();
        });
        expect(result.problem?.index).toBe(Math.min(a!, b!));
      }),
      { numRuns: 15 },
    );
  });

  it('names a removed entry: in the middle by its index, at the end by the index it had', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: SIZE - 1 }), async (index) => {
        const result = await checkTampered(h.store, key, async (trx) => {
          await trx.deleteFrom('ledger_entries').where('idx', '=', index).execute();
        });
        expect(result.problem?.index).toBe(index);
      }),
      { numRuns: 15 },
    );
  });

  it('names a checkpoint with a forged signature, or signed by another key, at its last entry', async () => {
    const stranger = generateKeyPair().privateKey;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...CHECKPOINT_SIZES), fc.boolean(), async (size, otherKey) => {
        const result = await checkTampered(h.store, key, async (trx) => {
          const row = await trx.selectFrom('ledger_checkpoints').select('note').where('size', '=', size).executeTakeFirstOrThrow();
          const body = row.note.slice(0, row.note.indexOf('\n\n') + 1);
          // Another key under the ledger's name, or the right key hash with a flipped signature byte.
          let forged = signNote(body, key.name, stranger);
          if (!otherKey) {
            const blob = Buffer.from(row.note.trim().split(' ').at(-1)!, 'base64');
            blob[10]! ^= 1;
            forged = `${body}\n— ${key.name} ${blob.toString('base64')}\n`;
          }
          await trx.updateTable('ledger_checkpoints').set({ note: forged }).where('size', '=', size).execute();
        });
        expect(result.problem?.index).toBe(size - 1);
        expect(result.problem?.what).toMatch(/checkpoint at size \d+: (the signature|note has no signature)/);
      }),
      { numRuns: 10 },
    );
  });

  it("refuses a validly signed checkpoint whose root is not the entries' root", async () => {
    const signer = loadLedgerSigner(h.dataDir);
    const result = await checkTampered(h.store, key, async (trx) => {
      const body = `${signer.origin}\n16\n${Buffer.alloc(32, 7).toString('base64')}\n`;
      await trx
        .updateTable('ledger_checkpoints')
        .set({ note: signNote(body, signer.origin, signer.key) })
        .where('size', '=', 16)
        .execute();
    });
    expect(result.problem).toEqual({ index: 15, what: 'checkpoint at size 16 does not match the root of the entries' });
  });

  describe('the signer checks what was added since the head it verified', () => {
    const headAt = async (size: number): Promise<TreeHead> => ({ size, root: await readRoot(h.store.db, size) });
    const changeEntry = (index: number) => async (trx: Db) => {
      await trx
        .updateTable('ledger_entries')
        .set({ entry: sql`replace(entry, '"data":{', '"data":{"x":1,')` })
        .where('idx', '=', index)
        .execute();
    };

    it('recomputes the root of the whole ledger from any earlier head', async () => {
      const whole = await checkLedger(h.store, key);
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: SIZE }), async (from) => {
          const { head, problem } = await checkExtension(h.store, await headAt(from), SIZE);
          expect(problem).toBeNull();
          expect(head).toEqual({ size: SIZE, root: whole.root });
        }),
        { numRuns: 15 },
      );
    });

    it('names an entry changed after the head by its index', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: SIZE - 1 }).chain((from) => fc.tuple(fc.constant(from), fc.integer({ min: from, max: SIZE - 1 }))),
          async ([from, index]) => {
            const head = await headAt(from);
            const { problem } = await tamperedThen(h.store, changeEntry(index), (tampered) => checkExtension(tampered, head, SIZE));
            expect(problem?.index).toBe(index);
          },
        ),
        { numRuns: 15 },
      );
    });

    it('refuses a stored tree that no longer has the root of the head, or no longer its nodes', async () => {
      const head = await headAt(30);
      // 30 = 16 + 8 + 4 + 2: the head's edge is nodes 4/0, 3/2, 2/6 and 1/14.
      const changed = await tamperedThen(
        h.store,
        async (trx) =>
          void (await trx
            .updateTable('ledger_nodes')
            .set({ hash: 'ab'.repeat(32) })
            .where('level', '=', 3)
            .where('idx', '=', 2)
            .execute()),
        (tampered) => checkExtension(tampered, head, SIZE),
      );
      expect(changed.problem).toEqual({ index: 29, what: `the stored tree at size 30 no longer has the root this server verified (${head.root.toString('hex')})` });
      const deleted = await tamperedThen(
        h.store,
        async (trx) => void (await trx.deleteFrom('ledger_nodes').where('level', '=', 2).where('idx', '=', 6).execute()),
        (tampered) => checkExtension(tampered, head, SIZE),
      );
      expect(deleted.problem).toEqual({ index: 24, what: 'stored tree node 2/6 is missing' });
    });

    it('signs nothing over a changed entry: it throws naming the entry', async () => {
      const signer = loadLedgerSigner(h.dataDir);
      const head = await headAt(30);
      const outcome = await tamperedThen(
        h.store,
        async (trx) => {
          await trx.deleteFrom('ledger_checkpoints').where('size', '=', SIZE).execute();
          await changeEntry(40)(trx);
        },
        async (tampered) => {
          const error = await signPendingCheckpoint(tampered, signer, new ManualClock(0), head).catch((e: unknown) => e);
          return {
            error,
            latest: await tampered.db
              .selectFrom('ledger_checkpoints')
              .select((eb) => eb.fn.max('size').as('m'))
              .executeTakeFirstOrThrow(),
          };
        },
      );
      expect(outcome.error).toBeInstanceOf(LedgerProblemError);
      expect((outcome.error as LedgerProblemError).problem.index).toBe(40);
      expect(Number(outcome.latest.m)).toBe(30);
    });

    it('refuses to sign when the tree is shorter than the head it verified', async () => {
      const signer = loadLedgerSigner(h.dataDir);
      const error = await signPendingCheckpoint(h.store, signer, new ManualClock(0), { size: SIZE + 5, root: Buffer.alloc(32) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LedgerProblemError);
      expect((error as LedgerProblemError).problem).toMatchObject({ index: SIZE, what: expect.stringContaining('rolled back') });
    });
  });
});
