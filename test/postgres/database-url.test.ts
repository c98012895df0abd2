/**
 * A PostgreSQL URL that works is remembered in the data directory, so that later commands on the
 * directory use the same database without being told; `--database-url ""` goes back to SQLite.
 * Needs a PostgreSQL server: this folder runs in the PostgreSQL half of the suite only.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, CLI, runCli, serversStoppedAfterEach, tempDataDir } from '../support/server-process.js';
import { dropDatabase, freshDatabaseUrl } from '../support/stores.js';

describe('remembering a PostgreSQL URL', () => {
  const start = serversStoppedAfterEach();

  it('a URL that connects and migrates is remembered (0600), later commands use it, and --database-url "" forgets it', async () => {
    const url = (await freshDatabaseUrl())!;
    expect(url).toMatch(/^postgres/);
    const dataDir = tempDataDir();
    const first = await start(dataDir, { args: ['--database-url', url] });
    expect(first.output()).toContain('store: postgres');
    expect(readFileSync(join(dataDir, 'database.url'), 'utf8')).toBe(`${url}\n`);
    expect(statSync(join(dataDir, 'database.url')).mode & 0o777).toBe(0o600);
    const created = await api(first.url, 'POST', '/v1/tenants', {
      token: first.adminToken,
      body: { tenant_id: 'acme', display_name: 'Acme', max_vms: 1, storage_quota_gb: 1, api_rate_limit_rpm: 60 },
    });
    expect(created.status).toBe(201);
    await first.stop();

    // Not told the URL, service-fs reads the PostgreSQL ledger.
    const read = runCli(CLI.fs, ['read', '--data-dir', dataDir, '--event-type', 'TENANT_CREATED']);
    expect(read.status).toBe(0);
    expect(read.stdout).toContain('tenant=acme');

    const back = await start(dataDir, { args: ['--database-url', ''] });
    expect(back.output()).toContain(`forgot the PostgreSQL URL in ${join(dataDir, 'database.url')}`);
    expect(back.output()).toContain(`store: ${join(dataDir, 'ppn.sqlite')})`);
    expect(existsSync(join(dataDir, 'database.url'))).toBe(false);
    const sqliteRead = runCli(CLI.fs, ['read', '--data-dir', dataDir, '--event-type', 'TENANT_CREATED']);
    expect(sqliteRead.status).toBe(0);
    expect(sqliteRead.stdout).toBe('');
    await back.stop();
    await dropDatabase(url);
  });
});
