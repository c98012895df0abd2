/**
 * `service-fs verify` on a real data directory (both stores): a clean ledger verifies; changing one
 * entry's bytes, or a checkpoint's signature, makes it exit non-zero naming the index. Tampering
 * needs the WORM triggers dropped first, as an attacker with database access would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { hashLeaf, verifyInclusion } from '../../src/ledger/merkle.js';
import { openNote, parseVerifierKey } from '../../src/ledger/note.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signPendingCheckpoint } from '../../src/control/checkpoints.js';
import { loadLedgerSigner, writeLedgerPublicKey } from '../../src/config/data-dir.js';
import { startHarness, type Harness } from '../support/harness.js';
import { CLI, runCli } from '../support/server-process.js';

async function dropWorm(h: Harness, table: string): Promise<void> {
  if (h.store.dialect === 'sqlite') {
    await sql.raw(`drop trigger ${table}_no_update`).execute(h.store.db);
    await sql.raw(`drop trigger ${table}_no_delete`).execute(h.store.db);
  } else {
    await sql.raw(`drop trigger ${table}_worm on ${table}`).execute(h.store.db);
  }
}

describe('service-fs verify', () => {
  let h: Harness;
  const verify = () => runCli(CLI.fs, ['verify', '--data-dir', h.dataDir]);

  beforeEach(async () => {
    h = await startHarness();
    writeLedgerPublicKey(h.dataDir);
    const signer = loadLedgerSigner(h.dataDir);
    await h.createTenant('audit-co');
    await signPendingCheckpoint(h.store, signer, h.clock);
    const { token } = await h.issueToken('audit-co', 'tenant:input');
    for (let i = 0; i < 6; i++) await h.request('POST', '/v1/vms', { token, body: { name: `vm-${i}` } });
    await signPendingCheckpoint(h.store, signer, h.clock);
  });
  afterEach(async () => {
    await h.close();
  });

  it('passes on an untouched ledger and says what it checked', () => {
    const out = verify();
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(/^ledger verified: \d+ entries, 2 checkpoints, latest at size \d+\n$/);
  });

  it('prove prints an inclusion proof that verifies against the signed checkpoint it carries', () => {
    const out = runCli(CLI.fs, ['prove', '3', '--data-dir', h.dataDir]);
    expect(out.stderr).toBe('');
    const result = JSON.parse(out.stdout) as { index: number; tree_size: number; entry: string; proof: string[]; checkpoint: string };
    const key = parseVerifierKey(readFileSync(join(h.dataDir, 'ledger.pub'), 'utf8'));
    const checkpoint = parseCheckpoint(openNote(result.checkpoint, key));
    expect(result.tree_size).toBe(checkpoint.size);
    const proof = result.proof.map((p) => Buffer.from(p, 'hex'));
    expect(verifyInclusion(3, checkpoint.size, hashLeaf(Buffer.from(result.entry)), proof, checkpoint.root)).toBe(true);
    expect(verifyInclusion(3, checkpoint.size, hashLeaf(Buffer.from(`${result.entry} `)), proof, checkpoint.root)).toBe(false);
  });

  it('prove refuses an index the checkpoint does not cover, and one that is not an index', () => {
    const beyond = runCli(CLI.fs, ['prove', '100000', '--data-dir', h.dataDir]);
    expect(beyond.status).not.toBe(0);
    expect(beyond.stderr).toMatch(/^error: entry 100000 is not covered by the latest checkpoint/);
    const bad = runCli(CLI.fs, ['prove', '-1', '--data-dir', h.dataDir]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).not.toMatch(/at .*\.js/);
  });

  it("fails naming the index when one entry's bytes are changed", async () => {
    await dropWorm(h, 'ledger_entries');
    const row = await h.store.db.selectFrom('ledger_entries').select('entry').where('idx', '=', 3).executeTakeFirstOrThrow();
    await h.store.db
      .updateTable('ledger_entries')
      .set({ entry: row.entry.replace('"ts":"', '"ts":"1') })
      .where('idx', '=', 3)
      .execute();
    const out = verify();
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(/^error: ledger verification failed at index 3: /);
  });

  it('fails naming the first of two swapped entries', async () => {
    await dropWorm(h, 'ledger_entries');
    const rows = await h.store.db.selectFrom('ledger_entries').select(['idx', 'entry']).where('idx', 'in', [2, 3]).orderBy('idx').execute();
    await h.store.db.updateTable('ledger_entries').set({ entry: rows[1]!.entry }).where('idx', '=', 2).execute();
    await h.store.db.updateTable('ledger_entries').set({ entry: rows[0]!.entry }).where('idx', '=', 3).execute();
    const out = verify();
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(/^error: ledger verification failed at index 2: entry 2 says it is entry 3/);
  });

  it('fails naming an index when the last entry is deleted', async () => {
    await dropWorm(h, 'ledger_entries');
    const last = await h.ledgerCount();
    await h.store.db
      .deleteFrom('ledger_entries')
      .where('idx', '=', last - 1)
      .execute();
    const out = verify();
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(new RegExp(`failed at index ${last - 1}: `));
  });

  it("fails naming an index when a checkpoint's signature is replaced", async () => {
    await dropWorm(h, 'ledger_checkpoints');
    const latest = await h.store.db.selectFrom('ledger_checkpoints').select(['size', 'note']).orderBy('size', 'desc').executeTakeFirstOrThrow();
    const forged = latest.note.replace(
      / (\S+)\n$/,
      (_m, blob: string) => ` ${Buffer.from(Buffer.from(blob, 'base64').map((b, i) => (i === 10 ? b ^ 1 : b))).toString('base64')}\n`,
    );
    await h.store.db.updateTable('ledger_checkpoints').set({ note: forged }).where('size', '=', latest.size).execute();
    const out = verify();
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(new RegExp(`failed at index ${Number(latest.size) - 1}: checkpoint at size ${latest.size}: .*does not verify`));
  });
});
