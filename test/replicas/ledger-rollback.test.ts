/**
 * Every replica is a witness of the shared database (SPEC §8): each remembers, in its own data
 * directory, the latest checkpoint it signed or verified, so someone who can write the database but
 * not every replica's disk can neither roll the ledger back nor delete its checkpoints unnoticed. A
 * rollback the operator means (an older backup restored) is accepted with `ledger accept-rollback`
 * on one replica's directory; the other accepts the database because the ledger then holds a
 * LEDGER_ROLLED_BACK entry, under a checkpoint signed with the ledger key, naming exactly the
 * checkpoint it remembers. The database is edited with psql, as its owner would.
 */
import { describe, expect, it } from 'vitest';
import { count, cutBackTo, dbShell, dropWorm, rememberedState } from '../support/db-shell.js';
import { api, CLI, readLedgerJson, replicaDataDir, runCli, serversStoppedAfterEach, within, type ServerProcess } from '../support/server-process.js';

describe('two replicas of one ledger', () => {
  const start = serversStoppedAfterEach();

  async function waitForCheckpointOfAll(dataDir: string): Promise<number> {
    const entries = count(dataDir, 'ledger_entries');
    const took = await within(10_000, async () => Number(dbShell(dataDir, 'select coalesce(max(size), 0) from ledger_checkpoints').trim()) === entries, 100);
    expect(took, `no checkpoint covered the ${entries} entries`).not.toBeNull();
    return entries;
  }

  /** Replicas A and B, stopped, each remembering the checkpoint of every entry written through A. */
  async function replicasThatSawTheSameCheckpoint(): Promise<{ a: string; b: string; entries: number }> {
    const a = await start();
    for (const tenant of ['acme', 'globex', 'initech']) {
      const res = await api(a.url, 'POST', '/v1/tenants', { token: a.adminToken, body: { tenant_id: tenant, display_name: tenant } });
      expect(res.status).toBe(201);
      await waitForCheckpointOfAll(a.dataDir);
    }
    const entries = await waitForCheckpointOfAll(a.dataDir);
    // B's start-up check verifies the checkpoint A signed, and B remembers it.
    const b = await start(replicaDataDir(a.dataDir));
    expect((await api(b.url, 'GET', '/readyz')).status).toBe(200);
    expect(await b.stop()).toBe(0);
    expect(await a.stop()).toBe(0);
    expect(rememberedState(a.dataDir).size).toBe(entries);
    expect(rememberedState(b.dataDir)).toEqual(rememberedState(a.dataDir));
    return { a: a.dataDir, b: b.dataDir, entries };
  }

  async function expectRefusing(server: ServerProcess, index: number, what: RegExp): Promise<void> {
    const ready = await api(server.url, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ code: 'ledger_unverified', bad_index: index });
    expect(ready.body.detail).toMatch(what);
    const write = await api(server.url, 'POST', '/v1/tenants', { token: server.adminToken, body: { tenant_id: 'refused-co', display_name: 'Refused' } });
    expect(write.status).toBe(503);
  }

  it('a database cut back to an earlier size is refused by both replicas, until accept-rollback on one lets both serve', async () => {
    const { a, b, entries } = await replicasThatSawTheSameCheckpoint();
    const earlier = Number(dbShell(a, 'select min(size) from ledger_checkpoints').trim());
    expect(earlier).toBeLessThan(entries);
    dbShell(a, cutBackTo(a, earlier));
    const checkpoints = count(a, 'ledger_checkpoints');

    for (const dataDir of [a, b]) {
      const out = runCli(CLI.fs, ['verify', '--data-dir', dataDir]);
      expect(out.status).not.toBe(0);
      expect(out.stderr).toMatch(new RegExp(`^error: ledger verification failed at index ${earlier}: the ledger holds ${earlier} entries, fewer than`));
      const server = await start(dataDir);
      await expectRefusing(server, earlier, /fewer than this server remembers a checkpoint/);
      expect(await server.stop()).toBe(0);
    }
    expect(count(a, 'ledger_checkpoints')).toBe(checkpoints);
    expect(count(a, 'ledger_entries')).toBe(earlier);

    const accepted = runCli(CLI.server, ['ledger', 'accept-rollback', '--data-dir', a]);
    expect(accepted.stderr).toBe('');
    expect(accepted.status).toBe(0);
    const [rollback] = readLedgerJson(a, '--event-type', 'LEDGER_ROLLED_BACK');
    expect(rollback).toMatchObject({ index: earlier, data: { from_size: entries, to_size: earlier, from_root: rememberedState(b).root } });

    const replicaA = await start(a);
    const replicaB = await start(b);
    for (const server of [replicaA, replicaB]) expect((await api(server.url, 'GET', '/readyz')).status).toBe(200);
    expect(rememberedState(b).size).toBeGreaterThan(earlier);
    const write = await api(replicaB.url, 'POST', '/v1/tenants', { token: replicaB.adminToken, body: { tenant_id: 'after-restore', display_name: 'After' } });
    expect(write.status).toBe(201);
    await waitForCheckpointOfAll(a);
    expect(runCli(CLI.fs, ['verify', '--data-dir', b]).status).toBe(0);
  });

  it('every checkpoint deleted from the database is refused by both replicas', async () => {
    const { a, b, entries } = await replicasThatSawTheSameCheckpoint();
    dbShell(a, `${dropWorm(a, 'ledger_checkpoints')} delete from ledger_checkpoints;`);
    for (const dataDir of [a, b]) {
      const server = await start(dataDir);
      await expectRefusing(server, entries - 1, /that checkpoint is not stored: checkpoints were deleted/);
      expect(await server.stop()).toBe(0);
    }
    expect(count(a, 'ledger_checkpoints')).toBe(0);
  });
});
