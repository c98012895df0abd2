/**
 * Upgrading from the previous release (docs/operations.md, "Upgrades and version skew"), with the
 * previous release's real server (built from this clone's history: ./previous-release.ts says how,
 * and why a shallow clone fails here rather than skipping) beside this one's.
 *
 * On PostgreSQL (the suite's PostgreSQL half): a rolling upgrade. Both releases serve as replicas of
 * one database at once; this release's migrations run while the previous one is serving, and requests
 * through either see the other's writes, in one ledger that verifies. On SQLite (the SQLite half):
 * the single server's upgrade, stop, upgrade, start, on the data directory the previous release
 * wrote. Each half runs the part for its store, so neither half passes by doing nothing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { latestMigration } from '../../src/store/migrations.js';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { VERSION } from '../../src/version.js';
import { dbShell } from '../support/db-shell.js';
import { api, CLI, replicaDataDir, runCli, serversStoppedAfterEach, type ServerProcess } from '../support/server-process.js';
import { ppnUser } from '../support/ppn-cli.js';
import { TEST_STORE } from '../support/stores.js';
import { buildPreviousRelease, PREVIOUS_RELEASE, type ReleaseBuild } from './previous-release.js';

let previous: ReleaseBuild;
beforeAll(() => {
  previous = buildPreviousRelease();
}, 300_000);

const appliedMigrations = (dataDir: string) => dbShell(dataDir, 'select name from kysely_migration order by name').trim().split('\n');

/** A tenant made through `server`, and a tenant:input token for it. */
async function tenantWithToken(server: ServerProcess, tenantId: string): Promise<string> {
  const created = await api(server.url, 'POST', '/v1/tenants', {
    token: server.adminToken,
    body: { tenant_id: tenantId, display_name: 'Upgrade Co', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 6000 },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const subject = encodeBase64url(rawPublicKey(generateKeyPair().publicKey));
  const issued = await api(server.url, 'POST', `/v1/tenants/${tenantId}/tokens`, {
    token: server.adminToken,
    body: { subject_pubkey: subject, scope: 'tenant:input', expires_in_seconds: 3600 },
  });
  expect(issued.status, JSON.stringify(issued.body)).toBe(201);
  return issued.body.token as string;
}

async function createVm(server: ServerProcess, token: string, name: string): Promise<void> {
  const answer = await api(server.url, 'POST', '/v1/vms', { token, body: { name, disk_gb: 5 } });
  expect(answer.status, `${name} on ${server.url}: ${JSON.stringify(answer.body)}`).toBe(201);
}

async function vmNames(server: ServerProcess, token: string): Promise<string[]> {
  const answer = await api(server.url, 'GET', '/v1/vms', { token });
  expect(answer.status).toBe(200);
  return (answer.body.items as { name: string }[]).map((vm) => vm.name).sort();
}

function expectLedgerVerifies(dataDir: string): void {
  const verified = runCli(CLI.fs, ['verify', '--data-dir', dataDir]);
  expect(verified.status, verified.stderr).toBe(0);
}

describe(`upgrading from release ${PREVIOUS_RELEASE.version} (${TEST_STORE})`, { timeout: 300_000 }, () => {
  const start = serversStoppedAfterEach();

  it('builds the previous release from history, which says its own version', () => {
    const out = runCli(previous.server, ['--version']);
    expect(out.stdout.trim()).toBe(PREVIOUS_RELEASE.version);
    expect(VERSION).not.toBe(PREVIOUS_RELEASE.version);
  });

  it("this release's agent warns it is newer than the previous release's server, and ppn (one minor version ahead is allowed) does not", async () => {
    const old = await start(undefined, { cli: previous.server });
    const next = await start();
    for (const [server, agentWarning] of [
      [old, `warning: service-vm-host ${VERSION} is newer than server ${PREVIOUS_RELEASE.version} (the same minor version is supported); upgrade the servers first\n`],
      [next, ''],
    ] as const) {
      await tenantWithToken(server, 'fleet-co');
      const stateDir = mkdtempSync(join(tmpdir(), 'ppn-node-'));
      const init = runCli(CLI.host, ['init', '--state-dir', stateDir]);
      expect(init.status, init.stderr).toBe(0);
      const nodeToken = await api(server.url, 'POST', '/v1/tenants/fleet-co/tokens', {
        token: server.adminToken,
        body: { subject_pubkey: init.stdout.trim(), scope: 'node:agent', expires_in_seconds: 3600 },
      });
      expect(nodeToken.status, JSON.stringify(nodeToken.body)).toBe(201);
      const enrolled = runCli(CLI.host, ['enroll', '--server', server.url, '--token', nodeToken.body.token, '--node-id', 'compute-01', '--state-dir', stateDir]);
      expect(enrolled.status, enrolled.stderr).toBe(0);
      expect(enrolled.stderr).toBe(`${agentWarning}enrolled as compute-01; start the agent with "service-vm-host run"\n`);

      const client = ppnUser({ PPN_SERVER: server.url });
      const shown = client.ok('version');
      expect(shown).toMatch(new RegExp(`^client +${VERSION}$`, 'm'));
      expect(shown).toMatch(new RegExp(`^server +${server === old ? 'before 0\\.2\\.0 \\(no /v1/version\\)' : VERSION}$`, 'm'));
    }
  });

  if (TEST_STORE === 'postgres') {
    it('runs both releases as replicas of one PostgreSQL database: the new one migrates it while the old one serves, and each sees the other', async () => {
      const old = await start(undefined, { cli: previous.server });
      const token = await tenantWithToken(old, 'upgrade-co');
      await createVm(old, token, 'before-upgrade');
      expect(appliedMigrations(old.dataDir)).not.toContain(latestMigration());

      // The new replica joins with the same keys and database, and migrates it under the old one.
      const next = await start(replicaDataDir(old.dataDir));
      expect(appliedMigrations(old.dataDir)).toContain(latestMigration());
      for (const server of [old, next]) expect((await api(server.url, 'GET', '/readyz')).status, server.url).toBe(200);
      expect((await api(next.url, 'GET', '/v1/version')).body).toMatchObject({ version: VERSION, store_schema: latestMigration() });

      // Writes through the new one, read through the old one, and the other way round.
      for (const name of ['after-1', 'after-2', 'after-3']) await createVm(next, token, name);
      await createVm(old, token, 'old-after-migration');
      const expected = ['after-1', 'after-2', 'after-3', 'before-upgrade', 'old-after-migration'];
      expect(await vmNames(old, token)).toEqual(expected);
      expect(await vmNames(next, token)).toEqual(expected);
      const tenant = await api(old.url, 'GET', '/v1/tenants/upgrade-co', { token: old.adminToken });
      expect(tenant.body.usage).toMatchObject({ vms: 5, storage_gb: 25 });
      expectLedgerVerifies(next.dataDir);

      // Release 0.1.0 predates recorded migration kinds: restarted now it refuses the database, which
      // is why docs/operations.md says to restart no old replica once a new one has started.
      await old.stop();
      const restarted = spawnSync(process.execPath, [previous.server, 'serve', '--listen', '127.0.0.1:0', '--data-dir', old.dataDir], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(restarted.status).not.toBe(0);
      expect(restarted.stderr).toContain(`previously executed migration ${latestMigration()} is missing`);
      expect(await vmNames(next, token)).toEqual(expected);
    });
  } else {
    it("opens the SQLite data directory the old release wrote: stop, upgrade, start, and the ledger goes on from the old one's checkpoint", async () => {
      const old = await start(undefined, { cli: previous.server });
      const token = await tenantWithToken(old, 'upgrade-co');
      for (const name of ['web-1', 'web-2']) await createVm(old, token, name);
      await old.stop();
      expect(appliedMigrations(old.dataDir)).not.toContain(latestMigration());

      const next = await start(old.dataDir);
      expect(appliedMigrations(old.dataDir)).toContain(latestMigration());
      expect((await api(next.url, 'GET', '/readyz')).body).toMatchObject({ status: 'ready', version: VERSION });
      expect(await vmNames(next, token)).toEqual(['web-1', 'web-2']);
      await createVm(next, token, 'web-3');
      expect(await vmNames(next, token)).toEqual(['web-1', 'web-2', 'web-3']);
      await next.stop();
      expectLedgerVerifies(old.dataDir);
    });
  }
});
