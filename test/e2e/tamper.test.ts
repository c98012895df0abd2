/**
 * Tampering with a real data directory (SPEC §8), on both stores: a real server writes entries over
 * HTTP and signs checkpoints, is stopped with SIGTERM, and the database is then changed with the
 * store's own command-line client (`sqlite3` on the SQLite file, `psql` on the PostgreSQL database
 * the directory remembers), the WORM triggers dropped first as an attacker with database access
 * would. For each change, `service-fs verify` exits non-zero naming the first bad index, and a
 * server restarted on the directory refuses to become ready, refuses writes (changing nothing) and
 * signs no new checkpoint. An untouched directory verifies and restarts ready.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { api, CLI, readLedgerJson, runCli, serversStoppedAfterEach, tempDataDir, within, type ServerProcess } from '../support/server-process.js';
import { count, cutBackTo, dbShell, dropWorm, LEDGER_TABLES, rememberedState } from '../support/db-shell.js';
import { TEST_STORE } from '../support/stores.js';

const subjectKey = () => generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;

interface Prepared {
  dataDir: string;
  /** Entries written (indexes 0 to entries-1), all covered by the latest checkpoint. */
  entries: number;
  /** The latest checkpoint's note, as the server served it. */
  note: string;
}

describe(`a tampered data directory (${TEST_STORE})`, () => {
  const start = serversStoppedAfterEach();

  async function latestNote(server: ServerProcess): Promise<string | null> {
    const res = await fetch(`${server.url}/v1/ledger/checkpoint`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    return res.status === 200 ? res.text() : null;
  }

  /** Waits until the server's latest checkpoint covers every entry in the store; returns it. */
  async function checkpointCoveringAll(server: ServerProcess): Promise<string> {
    const entries = count(server.dataDir, 'ledger_entries');
    let note = '';
    const took = await within(
      10_000,
      async () => {
        note = (await latestNote(server)) ?? '';
        return note !== '' && parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1)).size === entries;
      },
      50,
    );
    expect(took, `no checkpoint covered the ${entries} entries`).not.toBeNull();
    return note;
  }

  /**
   * A fresh directory with tenants, tokens and VMs made over HTTP in two batches, each covered by a
   * checkpoint (so there are at least two, and their consistency is checked too); the server stopped.
   */
  async function prepare(): Promise<Prepared> {
    const server = await start(tempDataDir());
    const admin = { token: server.adminToken };
    for (const tenant of ['acme', 'globex']) {
      const res = await api(server.url, 'POST', '/v1/tenants', {
        ...admin,
        body: { tenant_id: tenant, display_name: `${tenant} inc`, max_vms: 10, storage_quota_gb: 1000, api_rate_limit_rpm: 10_000 },
      });
      expect(res.status).toBe(201);
    }
    const issued = await api(server.url, 'POST', '/v1/tenants/acme/tokens', {
      ...admin,
      body: { subject_pubkey: subjectKey(), scope: 'tenant:input', expires_in_seconds: 3600 },
    });
    expect(issued.status).toBe(201);
    await checkpointCoveringAll(server);

    for (let i = 0; i < 3; i++) {
      expect((await api(server.url, 'POST', '/v1/vms', { token: issued.body.token, body: { name: `web-${i}` } })).status).toBe(201);
    }
    expect((await api(server.url, 'POST', '/v1/vms?tenant_id=globex', { ...admin, body: { name: 'db-1' } })).status).toBe(201);
    const patched = await api(server.url, 'PATCH', '/v1/tenants/globex', { ...admin, body: { display_name: 'Globex Corporation' } });
    expect(patched.status).toBe(200);
    const note = await checkpointCoveringAll(server);
    const entries = count(server.dataDir, 'ledger_entries');
    expect(entries).toBeGreaterThanOrEqual(9);
    expect(count(server.dataDir, 'ledger_checkpoints')).toBeGreaterThanOrEqual(2);

    expect(await server.stop()).toBe(0);
    // The server remembers, outside the database, the latest checkpoint it signed.
    expect(rememberedState(server.dataDir)).toMatchObject({ size: entries, note });
    expect(statSync(join(server.dataDir, 'ledger.state')).mode & 0o777).toBe(0o600);
    return { dataDir: server.dataDir, entries, note };
  }

  const verify = (dataDir: string) => runCli(CLI.fs, ['verify', '--data-dir', dataDir]);

  /**
   * After a tamper: verify names `index`; a restarted server is not ready and says so with
   * `bad_index`, refuses a write without changing the store, and signs no new checkpoint.
   */
  async function expectRefused(dataDir: string, index: number, what: RegExp): Promise<void> {
    const out = verify(dataDir);
    expect(out.status).not.toBe(0);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(new RegExp(`^error: ledger verification failed at index ${index}: `));
    expect(out.stderr).toMatch(what);

    const entriesBefore = count(dataDir, 'ledger_entries');
    const nodesBefore = count(dataDir, 'ledger_nodes');
    const tenantsBefore = count(dataDir, 'tenants');
    const checkpointsBefore = count(dataDir, 'ledger_checkpoints');
    const stateFile = join(dataDir, 'ledger.state');
    const stateBefore = existsSync(stateFile) ? readFileSync(stateFile, 'utf8') : null;

    const server = await start(dataDir);
    // A change before the checkpoint the server remembers is the background scrub's to find, at once
    // on a ledger this small; anything else fails the start-up check.
    let ready = await api(server.url, 'GET', '/readyz');
    await within(5000, async () => (ready = await api(server.url, 'GET', '/readyz')).status === 503, 20);
    expect(ready.status).toBe(503);
    expect(ready.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(ready.body).toMatchObject({ status: 503, code: 'ledger_unverified', bad_index: index });
    expect(ready.body.detail).toContain(`at index ${index}: `);

    const write = await api(server.url, 'POST', '/v1/tenants', { token: server.adminToken, body: { tenant_id: 'after-tamper', display_name: 'After' } });
    expect(write.status).toBe(503);
    expect(write.body).toMatchObject({ code: 'ledger_unverified', bad_index: index });
    const read = await api(server.url, 'GET', '/v1/ledger/checkpoint', { token: server.adminToken });
    expect(read.status).toBe(503);
    expect(read.body).toMatchObject({ code: 'ledger_unverified', bad_index: index });

    // Nothing was written or rebuilt, no checkpoint vouches for the altered ledger, and the server
    // still remembers what it remembered.
    expect(count(dataDir, 'ledger_entries')).toBe(entriesBefore);
    expect(count(dataDir, 'ledger_nodes')).toBe(nodesBefore);
    expect(count(dataDir, 'tenants')).toBe(tenantsBefore);
    expect(dbShell(dataDir, `select count(*) from tenants where tenant_id = 'after-tamper'`).trim()).toBe('0');
    const signed = await within(1500, async () => count(dataDir, 'ledger_checkpoints') !== checkpointsBefore, 100);
    expect(signed, 'a checkpoint was signed over a ledger that failed its check').toBeNull();
    expect(server.output()).toContain(`"bad_index":${index}`);
    expect(await server.stop()).toBe(0);
    expect(existsSync(stateFile) ? readFileSync(stateFile, 'utf8') : null).toBe(stateBefore);
  }

  it('control: an untouched directory verifies, and the restarted server is ready, writes, and signs', async () => {
    const { dataDir, entries } = await prepare();
    const out = verify(dataDir);
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toMatch(
      new RegExp(`^ledger verified: ${entries} entries, \\d+ checkpoints, latest at size ${entries}; extends the checkpoint at size ${entries} in ledger.state\\n$`),
    );

    const checkpointsBefore = count(dataDir, 'ledger_checkpoints');
    const server = await start(dataDir);
    const ready = await api(server.url, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ready');
    const write = await api(server.url, 'POST', '/v1/tenants', { token: server.adminToken, body: { tenant_id: 'after-restart', display_name: 'After' } });
    expect(write.status).toBe(201);
    expect(count(dataDir, 'ledger_entries')).toBe(entries + 1);
    // The same probe that sees no checkpoint after a tamper sees this one.
    const signed = await within(10_000, async () => count(dataDir, 'ledger_checkpoints') > checkpointsBefore, 100);
    expect(signed, 'no checkpoint covered the new entry').not.toBeNull();
  });

  it("one entry's bytes changed: names that entry", async () => {
    const { dataDir, entries } = await prepare();
    const target = 5;
    expect(entries).toBeGreaterThan(target + 1);
    dbShell(dataDir, `${dropWorm(dataDir, 'ledger_entries')} update ledger_entries set entry = replace(entry, '"ts":"', '"ts":"1') where idx = ${target};`);
    expect(dbShell(dataDir, `select idx from ledger_entries where entry like '%"ts":"12%'`).trim()).toBe(String(target));
    await expectRefused(dataDir, target, new RegExp(`entry ${target}'s bytes do not match its leaf hash`));
  });

  it('the last entry deleted: names its index', async () => {
    const { dataDir, entries } = await prepare();
    dbShell(dataDir, `${dropWorm(dataDir, 'ledger_entries')} delete from ledger_entries where idx = (select max(idx) from ledger_entries);`);
    expect(count(dataDir, 'ledger_entries')).toBe(entries - 1);
    // The latest checkpoint (size `entries`) covers an entry no longer stored, and the tree has its leaf.
    await expectRefused(dataDir, entries - 1, new RegExp(`checkpoint at size ${entries} covers entries that are not stored|the tree has leaves for ${entries} entries`));
  });

  it('two entries swapped: names the first of them', async () => {
    const { dataDir } = await prepare();
    dbShell(
      dataDir,
      `${dropWorm(dataDir, 'ledger_entries')}
       create temp table swapped as select idx, entry from ledger_entries where idx in (3, 4);
       update ledger_entries set entry = (select entry from swapped where swapped.idx = 7 - ledger_entries.idx) where idx in (3, 4);`,
    );
    expect(dbShell(dataDir, `select idx from ledger_entries where entry like '{"index":4,%'`).trim()).toBe('3');
    expect(dbShell(dataDir, `select idx from ledger_entries where entry like '{"index":3,%'`).trim()).toBe('4');
    await expectRefused(dataDir, 3, /entry 3 says it is entry 4/);
  });

  it("the latest checkpoint's signature replaced by one from another key: names its last entry", async () => {
    const { dataDir, entries, note } = await prepare();
    // `— <name> <base64(key hash ‖ signature)>` (src/ledger/note.ts): keep the genuine key hash, so the
    // line claims to be by the ledger key, and sign the same text with an impostor's key.
    const split = note.lastIndexOf('\n\n');
    const text = note.slice(0, split + 1);
    const blob = /^— \S+ (\S+)\n$/.exec(note.slice(split + 2))![1]!;
    const impostor = generateKeyPairSync('ed25519').privateKey;
    const forged = Buffer.concat([Buffer.from(blob, 'base64').subarray(0, 4), sign(null, Buffer.from(text), impostor)]).toString('base64');
    expect(forged).not.toBe(blob);
    dbShell(dataDir, `${dropWorm(dataDir, 'ledger_checkpoints')} update ledger_checkpoints set note = replace(note, '${blob}', '${forged}') where size = ${entries};`);
    expect(dbShell(dataDir, `select size from ledger_checkpoints where note like '%${forged}%'`).trim()).toBe(String(entries));
    expect(runCli(CLI.fs, ['checkpoint', '--data-dir', dataDir]).stdout).toBe(note.replace(blob, forged));
    await expectRefused(dataDir, entries - 1, new RegExp(`checkpoint at size ${entries}: the signature by ppn-ledger-[0-9a-f]{8} does not verify`));
  });

  it('entries rewritten, then the tree and every checkpoint deleted: the restarted server rebuilds nothing, refuses, and signs nothing', async () => {
    const { dataDir } = await prepare();
    dbShell(
      dataDir,
      `${LEDGER_TABLES.map((table) => dropWorm(dataDir, table)).join(' ')}
       update ledger_entries set entry = replace(entry, '"display_name":"globex inc"', '"display_name":"forged inc"');
       delete from ledger_nodes; delete from ledger_checkpoints;`,
    );
    expect(dbShell(dataDir, `select count(*) from ledger_entries where entry like '%forged inc%'`).trim()).toBe('1');
    await expectRefused(dataDir, 0, /the tree has no leaf for entry 0/);
  });

  it('an entry and the tree deleted: the server stays up and names the index instead of exiting', async () => {
    const { dataDir } = await prepare();
    // Entry 5 needs entry 4's leaf to build its parent: rebuilding the tree would fail there.
    dbShell(dataDir, `${dropWorm(dataDir, 'ledger_entries')} ${dropWorm(dataDir, 'ledger_nodes')} delete from ledger_entries where idx = 4; delete from ledger_nodes;`);
    await expectRefused(dataDir, 0, /the tree has no leaf for entry 0/);
  });

  it('every checkpoint deleted: refused, naming the checkpoint this server remembers', async () => {
    const { dataDir, entries } = await prepare();
    dbShell(dataDir, `${dropWorm(dataDir, 'ledger_checkpoints')} delete from ledger_checkpoints;`);
    await expectRefused(dataDir, entries - 1, new RegExp(`remembers a checkpoint at size ${entries} .*that checkpoint is not stored: checkpoints were deleted`));
  });

  it('cut back to an earlier consistent size: refused, naming the first entry missing', async () => {
    const { dataDir, entries } = await prepare();
    const earlier = Number(dbShell(dataDir, 'select min(size) from ledger_checkpoints').trim());
    expect(earlier).toBeLessThan(entries);
    dbShell(dataDir, cutBackTo(dataDir, earlier));
    await expectRefused(dataDir, earlier, new RegExp(`the ledger holds ${earlier} entries, fewer than this server remembers a checkpoint at size ${entries} `));
    // Only what the server remembers shows it: the database alone holds together.
    rmSync(join(dataDir, 'ledger.state'));
    expect(verify(dataDir).status).toBe(0);
  });

  it('cut back to empty while tenants exist: refused, with or without what the server remembers', async () => {
    const { dataDir, entries } = await prepare();
    dbShell(dataDir, cutBackTo(dataDir, 0));
    expect(count(dataDir, 'ledger_entries')).toBe(0);
    await expectRefused(
      dataDir,
      0,
      new RegExp(`the ledger is empty but the store holds 2 tenants|the ledger holds 0 entries, fewer than this server remembers a checkpoint at size ${entries}`),
    );
    rmSync(join(dataDir, 'ledger.state'));
    await expectRefused(dataDir, 0, /the ledger is empty but the store holds 2 tenants and \d+ tokens/);
  });

  it('a ledger.state that is not the signed checkpoint it claims: refused at index 0, without naming the path', async () => {
    const { dataDir } = await prepare();
    const state = rememberedState(dataDir);
    writeFileSync(join(dataDir, 'ledger.state'), `${JSON.stringify({ ...state, root: '00'.repeat(32) })}\n`, { mode: 0o600 });
    await expectRefused(dataDir, 0, /ledger.state is not a checkpoint signed with the ledger key: its size and root are not those of its checkpoint/);
    expect(verify(dataDir).stderr).not.toContain(dataDir);
  });

  it('an older copy restored is refused until the operator accepts it, which the ledger records as LEDGER_ROLLED_BACK', async () => {
    const { dataDir, entries } = await prepare();
    const remembered = rememberedState(dataDir);
    // What restoring the database as it was at its first checkpoint leaves.
    const earlier = Number(dbShell(dataDir, 'select min(size) from ledger_checkpoints').trim());
    dbShell(dataDir, cutBackTo(dataDir, earlier));
    await expectRefused(dataDir, earlier, /fewer than this server remembers/);

    const accepted = runCli(CLI.server, ['ledger', 'accept-rollback', '--data-dir', dataDir]);
    expect(accepted.stderr).toBe('');
    expect(accepted.status).toBe(0);
    expect(accepted.stdout).toContain(`accepting the ledger as stored: ${earlier} entries, root `);
    expect(accepted.stdout).toContain(`in place of the checkpoint this server remembers: size ${entries}, root ${remembered.root}`);
    const [entry] = readLedgerJson(dataDir, '--event-type', 'LEDGER_ROLLED_BACK');
    expect(entry).toMatchObject({ index: earlier, actor: { subject: 'local-operator' }, data: { from_size: entries, from_root: remembered.root, to_size: earlier } });
    expect(entry!.data.to_root).toMatch(/^[0-9a-f]{64}$/);
    expect(rememberedState(dataDir).size).toBe(earlier + 1);
    expect(verify(dataDir).status).toBe(0);
    // Accepting twice is refused: there is nothing left to accept.
    const again = runCli(CLI.server, ['ledger', 'accept-rollback', '--data-dir', dataDir]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/there is no rollback to accept/);

    const server = await start(dataDir);
    expect((await api(server.url, 'GET', '/readyz')).status).toBe(200);
    const write = await api(server.url, 'POST', '/v1/tenants', { token: server.adminToken, body: { tenant_id: 'after-restore', display_name: 'After' } });
    expect(write.status).toBe(201);
  });

  it('accept-rollback refuses a ledger that fails its own check, changing nothing', async () => {
    const { dataDir } = await prepare();
    dbShell(dataDir, `${dropWorm(dataDir, 'ledger_entries')} update ledger_entries set entry = replace(entry, '"ts":"', '"ts":"1') where idx = 5;`);
    const entriesBefore = count(dataDir, 'ledger_entries');
    const out = runCli(CLI.server, ['ledger', 'accept-rollback', '--data-dir', dataDir]);
    expect(out.status).not.toBe(0);
    expect(out.stderr).toMatch(/the stored ledger fails its own check at index 5: /);
    expect(count(dataDir, 'ledger_entries')).toBe(entriesBefore);
  });

  it('an entry appended behind a running server with a leaf that does not match: it signs nothing and starts refusing, naming it', async () => {
    const { dataDir, entries } = await prepare();
    const server = await start(dataDir);
    expect((await api(server.url, 'GET', '/readyz')).status).toBe(200);
    const checkpointsBefore = count(dataDir, 'ledger_checkpoints');
    // Appending needs no trigger dropped: the database writer adds a line and a leaf of its own.
    dbShell(
      dataDir,
      `insert into ledger_entries (idx, ts, event_type, entry) values (${entries}, '2026-11-29T00:00:00.000Z', 'TENANT_DELETED', '{"index":${entries},"forged":true}');
       insert into ledger_nodes (level, idx, hash) values (0, ${entries}, '${'00'.repeat(32)}');`,
    );
    const refusing = await within(5000, async () => (await api(server.url, 'GET', '/readyz')).status === 503, 100);
    expect(refusing, 'the server kept serving a ledger it could not check').not.toBeNull();
    const ready = await api(server.url, 'GET', '/readyz');
    expect(ready.body).toMatchObject({ code: 'ledger_unverified', bad_index: entries });
    expect(ready.body.detail).toContain(`entry ${entries}'s bytes do not match its leaf hash`);
    expect((await api(server.url, 'GET', '/v1/tenants', { token: server.adminToken })).status).toBe(503);
    expect(count(dataDir, 'ledger_checkpoints')).toBe(checkpointsBefore);
    expect(rememberedState(dataDir).size).toBe(entries);
  });
});
