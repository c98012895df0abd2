/**
 * `service-vm-tenant backup` and `restore` on real data directories (docs/operations.md, "Backup"
 * and "Restore"): real server processes, real files, the built CLI. On the SQLite half: an online
 * backup under write load restored, verified and served; what the file holds with and without keys;
 * the refusals (a live directory, a non-empty one, a corrupted backup, a rollback). On the PostgreSQL
 * half: the backup of a directory whose state is in PostgreSQL prints the pg_dump command, which is
 * run, and the dump and the data-directory part restore into a directory that verifies.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { verifyConsistency } from '../../src/ledger/merkle.js';
import { openNote, parseVerifierKey } from '../../src/ledger/note.js';
import { postgresBinary } from '../support/db-shell.js';
import {
  api,
  CLI,
  readLedgerJson,
  runCli,
  runCliAsync,
  serversStoppedAfterEach,
  startServer,
  tempDataDir,
  within,
  type ServerProcess,
} from '../support/server-process.js';
import { dropDatabase, freshDatabaseUrl, TEST_STORE } from '../support/stores.js';

const scratch = () => mkdtempSync(join(tmpdir(), 'ppn-backup-'));
const tarList = (file: string) => spawnSync('tar', ['tf', file], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
const verify = (dataDir: string) => runCli(CLI.fs, ['verify', '--data-dir', dataDir]);

async function createTenant(server: ServerProcess, tenantId: string): Promise<void> {
  const res = await api(server.url, 'POST', '/v1/tenants', {
    token: server.adminToken,
    body: { tenant_id: tenantId, display_name: tenantId, max_vms: 10_000, storage_quota_gb: 1_000_000, api_rate_limit_rpm: 100_000 },
  });
  expect(res.status).toBe(201);
}

/** The latest checkpoint (null before the first), its signature checked with the directory's published ledger key. */
async function checkpointOf(server: ServerProcess): Promise<{ size: number; root: Buffer; note: string } | null> {
  const res = await fetch(`${server.url}/v1/ledger/checkpoint`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  const note = await res.text();
  const checkpoint = parseCheckpoint(openNote(note, parseVerifierKey(readFileSync(join(server.dataDir, 'ledger.pub'), 'utf8'))));
  return { size: checkpoint.size, root: checkpoint.root, note };
}

/** Waits until a checkpoint covers at least `size` entries; returns it. */
async function checkpointCovering(server: ServerProcess, size: number) {
  let latest: Awaited<ReturnType<typeof checkpointOf>> = null;
  const took = await within(10_000, async () => ((latest = await checkpointOf(server))?.size ?? 0) >= size, 50);
  expect(took, `no checkpoint covered ${size} entries`).not.toBeNull();
  return latest!;
}

async function ledgerSize(server: ServerProcess): Promise<number> {
  const res = await api(server.url, 'GET', '/v1/ledger/entries?limit=1000', { token: server.adminToken });
  expect(res.status).toBe(200);
  return res.body.items.at(-1).index + 1;
}

async function listVmIds(server: ServerProcess, tenantId: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let cursor: string | null = ''; cursor !== null;) {
    const res = await api(server.url, 'GET', `/v1/vms?tenant_id=${tenantId}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { token: server.adminToken });
    expect(res.status).toBe(200);
    for (const vm of res.body.items) ids.add(vm.vm_id);
    cursor = res.body.next_cursor;
  }
  return ids;
}

if (TEST_STORE === 'sqlite') {
  describe('backup and restore of a SQLite data directory', () => {
    const start = serversStoppedAfterEach();
    let source: ServerProcess;
    let dir: string;
    /** Backups of `source`, without and with keys, at `backedUp` entries. */
    let plain: { file: string; stderr: string };
    let withKeys: { file: string; stderr: string };
    let backedUp: number;

    beforeAll(async () => {
      dir = scratch();
      source = await startServer();
      await createTenant(source, 'acme');
      for (const name of ['web-1', 'web-2'])
        expect((await api(source.url, 'POST', '/v1/vms?tenant_id=acme', { token: source.adminToken, body: { name } })).status).toBe(201);
      backedUp = await ledgerSize(source);
      await checkpointCovering(source, backedUp);
      const take = (file: string, ...args: string[]) => {
        const out = runCli(CLI.server, ['backup', '--data-dir', source.dataDir, '--out', file, ...args]);
        expect(out.status, out.stderr).toBe(0);
        return { file, stderr: out.stderr };
      };
      plain = take(join(dir, 'plain.tar'));
      withKeys = take(join(dir, 'keys.tar'), '--include-keys');
    });
    afterAll(async () => {
      await source?.stop();
    });

    it('a backup taken while 20 clients create VMs restores into a new directory that verifies, holds every VM acknowledged before it began, and serves, signing checkpoints that extend the backed-up one', async () => {
      const server = await start();
      await createTenant(server, 'busy');
      const acknowledged: string[] = [];
      const failures: string[] = [];
      let stop = false;
      const client = async (c: number) => {
        for (let n = 0; !stop; n++) {
          const res = await api(server.url, 'POST', '/v1/vms?tenant_id=busy', { token: server.adminToken, body: { name: `c${c}-vm-${n}` } });
          if (res.status === 201) acknowledged.push(res.body.vm_id);
          else failures.push(`${res.status} ${JSON.stringify(res.body)}`);
        }
      };
      const clients = Array.from({ length: 20 }, (_, c) => client(c));
      await within(30_000, async () => acknowledged.length >= 60, 10);

      // Taken synchronously just before the backup is started: every VM in it was acknowledged
      // before the backup began (a time stamp would drop those answered in the same millisecond).
      const ackedBefore = [...acknowledged];
      const file = join(scratch(), 'busy.tar');
      const backup = await runCliAsync(CLI.server, ['backup', '--data-dir', server.dataDir, '--out', file, '--include-keys']);
      stop = true;
      await Promise.all(clients);
      expect(failures).toEqual([]);
      expect(backup.status, backup.stderr).toBe(0);
      expect(backup.stderr).toMatch(/copied the store: \d+ pages/);
      expect(backup.stdout).toMatch(/^backup written to .*busy\.tar: \d+ ledger entries \(the latest checkpoint at tree size \d+\), \d+ VMs, 1 tenants, \d+ bytes\n$/);
      expect(ackedBefore.length).toBeGreaterThanOrEqual(60);
      await server.stop();

      const restored = tempDataDir();
      const out = runCli(CLI.server, ['restore', file, '--data-dir', restored]);
      expect(out.status, out.stderr).toBe(0);
      expect(out.stdout).toMatch(/^ledger verified: \d+ entries, \d+ checkpoints, latest at size \d+; extends the checkpoint at size \d+ in ledger.state\n/);
      expect(out.stdout).not.toContain('holds no keys');
      expect(verify(restored).status).toBe(0);
      const backedUpCheckpoint = JSON.parse(readFileSync(join(restored, 'ledger.state'), 'utf8')) as { size: number; root: string };

      const again = await start(restored);
      expect((await api(again.url, 'GET', '/readyz')).status).toBe(200);
      const present = await listVmIds(again, 'busy');
      expect(ackedBefore.filter((id) => !present.has(id))).toEqual([]);

      // The restored server goes on from the backed-up ledger: its next checkpoint extends it.
      expect((await api(again.url, 'POST', '/v1/vms?tenant_id=busy', { token: again.adminToken, body: { name: 'after-restore' } })).status).toBe(201);
      const next = await checkpointCovering(again, backedUpCheckpoint.size + 1);
      const proof = await api(again.url, 'GET', `/v1/ledger/proof/consistency?from=${backedUpCheckpoint.size}&to=${next.size}`, { token: again.adminToken });
      expect(proof.status).toBe(200);
      const hashes = (proof.body.hashes as string[]).map((h) => Buffer.from(h, 'hex'));
      expect(verifyConsistency(backedUpCheckpoint.size, next.size, Buffer.from(backedUpCheckpoint.root, 'hex'), next.root, hashes)).toBe(true);
      expect(verify(restored).status).toBe(0);
    });

    it('restore refuses a live directory, even with --force, and a non-empty one without --force, changing neither', async () => {
      for (const args of [[], ['--force']]) {
        const out = runCli(CLI.server, ['restore', plain.file, '--data-dir', source.dataDir, ...args]);
        expect(out.status).toBe(1);
        expect(out.stderr).toMatch(/holds the lock on .*: .* is a live data directory, and restore never writes into one/);
      }
      expect((await api(source.url, 'GET', '/readyz')).status).toBe(200);

      const occupied = join(scratch(), 'occupied');
      mkdirSync(occupied);
      writeFileSync(join(occupied, 'notes.txt'), 'mine\n');
      const out = runCli(CLI.server, ['restore', plain.file, '--data-dir', occupied]);
      expect(out.status).toBe(1);
      expect(out.stderr).toMatch(/is not empty \(it holds notes.txt\): restore into a new directory, or give --force/);
      expect(readdirSync(occupied)).toEqual(['notes.txt']);
    });

    it('without --include-keys the file holds no private key and restore names the key files to put in place; with it the file is 0600 and the warning is printed', () => {
      const bytes = readFileSync(plain.file);
      const secrets = ['keys/ledger.pem', 'keys/admin.pem', 'keys/keyset.kek', 'admin.token'].map((name) => readFileSync(join(source.dataDir, name), 'utf8').trim());
      for (const secret of secrets) expect(bytes.includes(secret)).toBe(false);
      // Nor the raw Ed25519 private keys, in any form.
      for (const name of ['keys/ledger.pem', 'keys/admin.pem']) {
        const d = createPrivateKey(readFileSync(join(source.dataDir, name), 'utf8')).export({ format: 'jwk' }).d!;
        for (const form of [Buffer.from(d, 'base64url'), Buffer.from(d), Buffer.from(Buffer.from(d, 'base64url').toString('base64'))])
          expect(bytes.includes(form)).toBe(false);
      }
      expect(bytes.includes('PRIVATE KEY')).toBe(false);
      expect(tarList(plain.file)).toEqual(['manifest.json', 'ppn.sqlite', 'ledger.pub', 'ledger.state']);
      expect(statSync(plain.file).mode & 0o777).toBe(0o600);
      expect(plain.stderr).toMatch(/no keys in .*plain\.tar: a restore needs keys\/keyset\.kek, keys\/ledger\.pem, keys\/admin\.pem/);
      expect(plain.stderr).not.toContain('WARNING');

      const restored = tempDataDir();
      const out = runCli(CLI.server, ['restore', plain.file, '--data-dir', restored]);
      expect(out.status, out.stderr).toBe(0);
      expect(out.stdout).toContain(
        `the backup holds no keys: before serving, put ${['keys/keyset.kek', 'keys/ledger.pem', 'keys/admin.pem'].map((k) => join(restored, k)).join(', ')} in place`,
      );
      expect(verify(restored).status).toBe(0);

      expect(statSync(withKeys.file).mode & 0o777).toBe(0o600);
      expect(withKeys.stderr).toMatch(/WARNING: .*keys\.tar HOLDS THE PRIVATE KEYS/);
      expect(tarList(withKeys.file)).toEqual(expect.arrayContaining(['keys/ledger.pem', 'keys/admin.pem', 'keys/keyset.kek', 'admin.token']));
      const keysBytes = readFileSync(withKeys.file);
      for (const secret of secrets) expect(keysBytes.includes(secret)).toBe(true);
    });

    it("a backup with one byte of a ledger entry changed is refused by restore's verify, naming that entry, and one whose members differ from its manifest is refused too; nothing is restored", () => {
      const bytes = Buffer.from(readFileSync(plain.file));
      const marker = Buffer.from('{"index":1,"ts":"20');
      const at = bytes.indexOf(marker);
      expect(at).toBeGreaterThan(0);
      expect(bytes.lastIndexOf(marker)).toBe(at);
      bytes[at + marker.length] = bytes[at + marker.length] === 0x39 ? 0x38 : bytes[at + marker.length]! + 1;
      const corrupted = join(scratch(), 'corrupted.tar');
      writeFileSync(corrupted, bytes);

      const restored = tempDataDir();
      const out = runCli(CLI.server, ['restore', corrupted, '--data-dir', restored]);
      expect(out.status).toBe(1);
      expect(out.stderr).toMatch(
        /^error: the backup does not verify, nothing was restored: ledger verification failed at index 1: entry 1's bytes do not match its leaf hash/,
      );
      expect(readdirSync(restored)).toEqual([]);

      // A member whose bytes are not those the manifest records (here the record changed) is refused too.
      const original = readFileSync(plain.file);
      const digest = /"ppn\.sqlite": \{\s*"bytes": \d+,\s*"sha256": "([0-9a-f]{64})"/.exec(original.toString('latin1'))![1]!;
      const changed = Buffer.from(original.toString('latin1').replace(digest, `${digest[0] === 'a' ? 'b' : 'a'}${digest.slice(1)}`), 'latin1');
      writeFileSync(corrupted, changed);
      const mismatch = runCli(CLI.server, ['restore', corrupted, '--data-dir', restored]);
      expect(mismatch.status).toBe(1);
      expect(mismatch.stderr).toMatch(/^error: the backup's ppn\.sqlite is not the file its manifest describes \(SHA-256 differs\); nothing was restored/);
      expect(readdirSync(restored)).toEqual([]);

      // And so is a member slipped in that the manifest does not list (appended with tar itself).
      copyFileSync(plain.file, corrupted);
      expect(spawnSync('tar', ['rf', corrupted, '-C', source.dataDir, 'keys/ledger.pem']).status).toBe(0);
      const slipped = runCli(CLI.server, ['restore', corrupted, '--data-dir', restored]);
      expect(slipped.status).toBe(1);
      expect(slipped.stderr).toMatch(/^error: the backup holds keys\/ledger\.pem, which its manifest does not list; nothing was restored/);
      expect(readdirSync(restored)).toEqual([]);
    });

    it('a backup older than a checkpoint servers have seen is refused without --accept-rollback, and with it restored and recorded as LEDGER_ROLLED_BACK', async () => {
      // The directory restored from the backup serves on and signs past it; the backup is then restored over it.
      const target = tempDataDir();
      expect(runCli(CLI.server, ['restore', withKeys.file, '--data-dir', target]).status).toBe(0);
      const server = await start(target);
      await createTenant(server, 'later');
      const seen = await checkpointCovering(server, backedUp + 1);
      const seenFile = join(scratch(), 'seen.checkpoint');
      writeFileSync(seenFile, seen.note);
      await server.stop();

      const refused = runCli(CLI.server, ['restore', withKeys.file, '--data-dir', target, '--force']);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain(
        `the backup's ledger does not extend the checkpoint at tree size ${seen.size} (root ${seen.root.toString('hex')}) that ${join(target, 'ledger.state')} remembers`,
      );
      expect(refused.stderr).toMatch(/Nothing was restored\. If an older state is what you mean to restore, run this again with --accept-rollback/);
      expect(readLedgerJson(target, '--filter', 'tenant-id=later')).toHaveLength(1);

      // The same from a checkpoint fetched from the live system, into a new directory.
      const fresh = tempDataDir();
      const refusedFresh = runCli(CLI.server, ['restore', withKeys.file, '--data-dir', fresh, '--seen-checkpoint', seenFile]);
      expect(refusedFresh.status).toBe(1);
      expect(refusedFresh.stderr).toContain(
        `does not extend the checkpoint at tree size ${seen.size} (root ${seen.root.toString('hex')}) that the checkpoint in ${seenFile} remembers`,
      );
      expect(existsSync(join(fresh, 'ppn.sqlite'))).toBe(false);

      for (const [dataDir, extra] of [
        [target, ['--force']],
        [fresh, ['--seen-checkpoint', seenFile]],
      ] as const) {
        const accepted = runCli(CLI.server, ['restore', withKeys.file, '--data-dir', dataDir, '--accept-rollback', ...extra]);
        expect(accepted.status, accepted.stderr).toBe(0);
        expect(accepted.stdout).toContain(`in place of the checkpoint this server remembers: size ${seen.size}, root ${seen.root.toString('hex')}`);
        expect(accepted.stdout).toMatch(new RegExp(`recorded LEDGER_ROLLED_BACK at index ${backedUp}, signed a checkpoint at size ${backedUp + 1}`));
        const [entry] = readLedgerJson(dataDir, '--event-type', 'LEDGER_ROLLED_BACK');
        expect(entry).toMatchObject({ index: backedUp, data: { from_size: seen.size, from_root: seen.root.toString('hex'), to_size: backedUp } });
        expect(readLedgerJson(dataDir, '--filter', 'tenant-id=later')).toEqual([]);
        // Ready means the start-up check of the ledger passed.
        const again = await start(dataDir);
        expect((await api(again.url, 'GET', '/readyz')).status).toBe(200);
        await again.stop();
      }
    });

    it("--ledger-key pins the ledger key: a backup whose ledger.pub, ledger key and ledger are another ledger's is refused, writing nothing; the right key, as a file or as text, restores", async () => {
      // Another server's backup with its keys: a ledger.pub, keys/ledger.pem and a ledger that agree
      // with one another, as a backup whose key and ledger were replaced together would.
      const other = await start();
      await createTenant(other, 'mallory');
      const otherSeen = await checkpointCovering(other, await ledgerSize(other));
      const otherSeenFile = join(scratch(), 'other.checkpoint');
      writeFileSync(otherSeenFile, otherSeen.note);
      const swapped = join(scratch(), 'swapped.tar');
      expect(runCli(CLI.server, ['backup', '--data-dir', other.dataDir, '--out', swapped, '--include-keys']).status).toBe(0);
      await other.stop();
      const keyName = (dataDir: string) => {
        const key = parseVerifierKey(readFileSync(join(dataDir, 'ledger.pub'), 'utf8'));
        return `${key.name}+${key.keyHash.toString('hex')}`;
      };
      const realPub = join(source.dataDir, 'ledger.pub');
      const realKeyText = readFileSync(realPub, 'utf8').trim();

      for (const given of [realPub, realKeyText]) {
        const target = tempDataDir();
        const refused = runCli(CLI.server, ['restore', swapped, '--data-dir', target, '--ledger-key', given]);
        expect(refused.status).toBe(1);
        expect(refused.stdout).toBe('');
        expect(refused.stderr).toBe(
          `error: the backup's ledger key is ${keyName(other.dataDir)}, not ${keyName(source.dataDir)} given with --ledger-key: ` +
            'its ledger.pub, and so its ledger, is not the one you named; nothing was restored\n',
        );
        expect(readdirSync(target)).toEqual([]);
      }

      // The real backup with the real key restores, with no first-use notice, as a file and as text.
      for (const [file, given] of [
        [withKeys.file, realPub],
        [plain.file, realKeyText],
      ] as const) {
        const target = tempDataDir();
        const out = runCli(CLI.server, ['restore', file, '--data-dir', target, '--ledger-key', given]);
        expect(out.status, out.stderr).toBe(0);
        expect(out.stdout).toContain(`restored ${file} into ${target}\n`);
        expect(out.stderr).toBe('');
        expect(readFileSync(join(target, 'ledger.pub'), 'utf8').trim()).toBe(realKeyText);
        expect(verify(target).status).toBe(0);
      }

      // --seen-checkpoint is checked with the pinned key: one signed by the other ledger's is refused.
      const target = tempDataDir();
      const foreign = runCli(CLI.server, ['restore', withKeys.file, '--data-dir', target, '--ledger-key', realPub, '--seen-checkpoint', otherSeenFile]);
      expect(foreign.status).toBe(2);
      expect(foreign.stderr).toContain(
        `error: ${otherSeenFile} is not a checkpoint signed with the ledger key given with --ledger-key (${parseVerifierKey(realKeyText).name}): `,
      );
      expect(foreign.stderr).toMatch(/; nothing was restored\n$/);
      expect(existsSync(join(target, 'ppn.sqlite'))).toBe(false);
    });

    it('a --ledger-key that is neither a verifier key nor a file holding one is a usage error (exit 2), before anything is written', () => {
      const dir = scratch();
      const notAKey = join(dir, 'notes.txt');
      writeFileSync(notAKey, 'not a key\n');
      const missing = join(dir, 'no-such-ledger.pub');
      const cases: [string, string][] = [
        [
          'garbage',
          '--ledger-key wants a verifier key or a file holding one, such as ledger.pub: "garbage" is neither (no such file; a verifier key is <name>+<8 hex digits>+<base64 key>)',
        ],
        [
          missing,
          `--ledger-key wants a verifier key or a file holding one, such as ledger.pub: "${missing}" is neither (no such file; a verifier key is <name>+<8 hex digits>+<base64 key>)`,
        ],
        [notAKey, `the ledger key in ${notAKey} (--ledger-key) is not a verifier key: a verifier key is <name>+<8 hex digits>+<base64 key>`],
      ];
      for (const [given, message] of cases) {
        const target = tempDataDir();
        const out = runCli(CLI.server, ['restore', plain.file, '--data-dir', target, '--ledger-key', given]);
        expect(out.status, given).toBe(2);
        expect(out.stdout, given).toBe('');
        expect(out.stderr, given).toBe(`error: ${message}\n`);
        expect(existsSync(target), given).toBe(false);
      }
    });

    it("without --ledger-key, a restore into a directory with no ledger.pub trusts the backup's key and names it on stderr, with how to pin one", () => {
      const target = tempDataDir();
      const out = runCli(CLI.server, ['restore', plain.file, '--data-dir', target]);
      expect(out.status, out.stderr).toBe(0);
      const key = readFileSync(join(source.dataDir, 'ledger.pub'), 'utf8').trim();
      expect(out.stderr).toBe(
        `trusted the backup's ledger key ${key} (first use: ${target} had no ledger.pub to check it against; pin the key with --ledger-key <ledger.pub> next time)\n`,
      );
      // Once the directory holds that ledger.pub, it is the key checked against: no notice.
      const again = runCli(CLI.server, ['restore', plain.file, '--data-dir', target, '--force']);
      expect(again.status, again.stderr).toBe(0);
      expect(again.stderr).toBe('');
    });
  });
} else {
  describe('backup of a data directory whose state is in PostgreSQL', () => {
    const start = serversStoppedAfterEach();

    it('prints the pg_dump command (no password) and writes the data-directory part without the database; the dump and that part restore into a directory that verifies', async () => {
      const server = await start();
      await createTenant(server, 'acme');
      await checkpointCovering(server, await ledgerSize(server));
      const url = new URL(readFileSync(join(server.dataDir, 'database.url'), 'utf8').trim());
      const database = url.pathname.slice(1);
      const dir = scratch();
      const file = join(dir, 'pg-part.tar');
      const withPassword = new URL(url);
      withPassword.password = 's3cret-pw';
      const out = runCli(CLI.server, ['backup', '--data-dir', server.dataDir, '--out', file, '--database-url', withPassword.toString()]);
      expect(out.status, out.stderr).toBe(0);
      expect(out.stdout + out.stderr).not.toContain('s3cret-pw');
      const command = /^ {2}(pg_dump .*)$/m.exec(out.stdout)?.[1];
      expect(command).toMatch(
        new RegExp(
          `^pg_dump --format=custom --file=ppn-${database}-\\d{8}T\\d{6}Z\\.dump --host=${url.hostname} --port=${url.port} --username=${url.username} --dbname=${database}$`,
        ),
      );
      expect(out.stdout).toMatch(/THE DATABASE ITSELF IS NOT IN THIS FILE/);
      expect(out.stdout).toContain('Copy ledger.state before running pg_dump');
      expect(tarList(file)).toEqual(['manifest.json', 'ledger.pub', 'ledger.state']);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      await server.stop();

      // The printed command, as printed (the test server trusts loopback connections).
      const [, ...args] = command!.split(' ');
      const dumped = spawnSync(postgresBinary('pg_dump'), args, { cwd: dir, encoding: 'utf8' });
      expect(dumped.status, dumped.stderr).toBe(0);
      const dump = join(dir, args.find((a) => a.startsWith('--file='))!.slice('--file='.length));
      expect(statSync(dump).size).toBeGreaterThan(0);

      const target = await freshDatabaseUrl();
      try {
        const loaded = spawnSync(postgresBinary('pg_restore'), ['--no-owner', `--dbname=${target}`, dump], { encoding: 'utf8' });
        expect(loaded.status, loaded.stderr).toBe(0);
        const restored = tempDataDir();
        const withoutUrl = runCli(CLI.server, ['restore', file, '--data-dir', restored]);
        expect(withoutUrl.status).toBe(2);
        expect(withoutUrl.stderr).toMatch(/the database is not in it\. Restore its pg_dump first/);
        const done = runCli(CLI.server, ['restore', file, '--data-dir', restored, '--database-url', target!]);
        expect(done.status, done.stderr).toBe(0);
        expect(done.stdout).toMatch(/^ledger verified: \d+ entries/);
        expect(readFileSync(join(restored, 'database.url'), 'utf8').trim()).toBe(target);
        expect(verify(restored).status).toBe(0);
      } finally {
        await dropDatabase(target);
      }
    });
  });
}
