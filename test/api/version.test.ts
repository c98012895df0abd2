/**
 * The release has one version, package.json's: GET /v1/version (no token) and /readyz, ready or
 * not, report it, and so does every bin's --version. The version-skew policy (src/version.ts) that
 * the agent and ppn apply to GET /v1/version's answer, case by case.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { latestMigration } from '../../src/store/migrations.js';
import { versionSkewWarning, type ServerVersion } from '../../src/version.js';
import { dbShell, dropWorm } from '../support/db-shell.js';
import { startHarness } from '../support/harness.js';
import { api, CLI, runCli, serversStoppedAfterEach, within } from '../support/server-process.js';

const packageVersion = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

describe('the version a server reports', () => {
  const start = serversStoppedAfterEach();

  it('GET /v1/version answers without a token: the release, the API, the oldest agent and client, the store schema', async () => {
    const h = await startHarness();
    try {
      const answer = await h.request('GET', '/v1/version');
      expect(answer.statusCode).toBe(200);
      expect(answer.json()).toEqual({
        version: packageVersion,
        api: 'v1',
        min_agent: expect.any(String),
        min_client: expect.any(String),
        store_schema: latestMigration(),
      });
      const { min_agent, min_client } = answer.json<ServerVersion>();
      // One minor version back (docs/operations.md): 0.2.0 supports agents and clients from 0.1.0.
      const [major, minor] = packageVersion.split('.').map(Number);
      expect(min_agent).toBe(`${major}.${Math.max(0, minor! - 1)}.0`);
      expect(min_client).toBe(min_agent);
      expect((await h.request('GET', '/readyz')).json()).toMatchObject({ status: 'ready', version: packageVersion });
    } finally {
      await h.close();
    }
  });

  it('/readyz says the version when it refuses too, and /v1/version still answers while the ledger is refused', async () => {
    const first = await start();
    await first.stop();
    // One entry's bytes changed behind the server's back: the restarted server's scrub finds it.
    dbShell(first.dataDir, `${dropWorm(first.dataDir, 'ledger_entries')} update ledger_entries set entry = replace(entry, '"ts":"', '"ts":"1') where idx = 0;`);
    const server = await start(first.dataDir);
    let ready = await api(server.url, 'GET', '/readyz');
    await within(5000, async () => (ready = await api(server.url, 'GET', '/readyz')).status === 503, 20);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ code: 'ledger_unverified', version: packageVersion });
    expect((await api(server.url, 'GET', '/v1/tenants', { token: server.adminToken })).status).toBe(503);
    const version = await api(server.url, 'GET', '/v1/version');
    expect(version.status).toBe(200);
    expect(version.body.version).toBe(packageVersion);
  });

  it("every bin's --version prints the package's version", () => {
    for (const bin of [CLI.server, CLI.fs, CLI.ppn, CLI.host]) {
      const out = runCli(bin, ['--version']);
      expect(out.status, bin).toBe(0);
      expect(out.stdout.trim(), bin).toBe(packageVersion);
    }
  });
});

describe('the version-skew policy', () => {
  const server = (version: string, min = '0.3.0'): ServerVersion => ({ version, api: 'v1', min_agent: min, min_client: min, store_schema: '0015_migration_kinds' });

  it('is quiet for the same release, or any patch of it', () => {
    expect(versionSkewWarning('agent', '0.4.0', server('0.4.0'))).toBeNull();
    expect(versionSkewWarning('client', '0.4.7', server('0.4.2'))).toBeNull();
  });

  it('accepts an agent or a client one minor version older than the server, as the server says', () => {
    expect(versionSkewWarning('agent', '0.3.9', server('0.4.0'))).toBeNull();
    expect(versionSkewWarning('client', '0.3.0', server('0.4.0'))).toBeNull();
  });

  it('warns an agent or a client older than the server supports, naming what to upgrade', () => {
    expect(versionSkewWarning('agent', '0.2.5', server('0.4.0'))).toBe(
      'warning: service-vm-host 0.2.5 is older than server 0.4.0 supports (at least 0.3.0); upgrade service-vm-host',
    );
    expect(versionSkewWarning('client', '0.2.0', server('0.4.0'))).toMatch(
      /^warning: ppn 0\.2\.0 is older than server 0\.4\.0 supports \(at least 0\.3\.0\); upgrade ppn$/,
    );
  });

  it('lets a client be one minor version newer than the server, but not an agent', () => {
    expect(versionSkewWarning('client', '0.5.0', server('0.4.0'))).toBeNull();
    expect(versionSkewWarning('client', '0.6.0', server('0.4.0'))).toMatch(/ppn 0\.6\.0 is newer than server 0\.4\.0 .*upgrade the servers first/);
    expect(versionSkewWarning('agent', '0.5.0', server('0.4.0'))).toMatch(
      /service-vm-host 0\.5\.0 is newer than server 0\.4\.0 \(the same minor version is supported\); upgrade the servers first/,
    );
  });

  it('treats another major version as outside the policy, either way', () => {
    expect(versionSkewWarning('client', '2.0.0', server('1.9.0', '1.8.0'))).toMatch(/newer than server/);
    expect(versionSkewWarning('client', '1.9.0', server('2.0.0', '2.0.0'))).toMatch(/older than server/);
  });

  it('says so, rather than guessing, when a version is not one', () => {
    expect(versionSkewWarning('agent', '0.4.0', server('unknown'))).toMatch(/^warning: cannot compare service-vm-host 0\.4\.0 with server unknown/);
  });
});
