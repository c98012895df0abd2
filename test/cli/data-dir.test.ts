/**
 * The data directory as the operating system sees it: who may read it, and which server holds it.
 * Real `serve` processes on real ports (test/support/server-process.ts), under umask 022 where the
 * umask matters, on SQLite and on PostgreSQL (where the directory still holds the keys).
 */
import { chmodSync, cpSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, serversStoppedAfterEach, startServer, tempDataDir } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe(`data directory permissions (${TEST_STORE})`, () => {
  const start = serversStoppedAfterEach();

  it('under umask 022 the directory is 0700 and the database files and secrets 0600', async () => {
    const server = await start(undefined, { umask: '022' });
    // A write, so that SQLite has its -wal and -shm files in use.
    const created = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: 'acme', display_name: 'Acme', max_vms: 1, storage_quota_gb: 1, api_rate_limit_rpm: 60 },
    });
    expect(created.status).toBe(201);
    expect(modeOf(server.dataDir)).toBe('700');
    expect(modeOf(join(server.dataDir, 'keys'))).toBe('700');
    const secrets = ['admin.token', 'server.lock', 'keys/admin.pem', 'keys/ledger.pem', 'keys/keyset.kek'];
    if (TEST_STORE === 'sqlite') secrets.push('ppn.sqlite', 'ppn.sqlite-wal', 'ppn.sqlite-shm');
    else secrets.push('database.url');
    for (const file of secrets) expect(`${file} ${modeOf(join(server.dataDir, file))}`).toBe(`${file} 600`);
  });

  it('a directory that exists with mode 0755 is tightened to 0700, and the server says so', async () => {
    const dataDir = tempDataDir();
    mkdirSync(dataDir);
    chmodSync(dataDir, 0o755);
    const server = await start(dataDir, { umask: '022' });
    expect(modeOf(dataDir)).toBe('700');
    expect(server.output()).toContain(`tightened ${dataDir} (was 0755) to 0700`);
  });
});

describe(`the data-directory lock (${TEST_STORE})`, () => {
  const start = serversStoppedAfterEach();

  it('a second server on the same directory is refused, naming the pid, host and start time of the one holding it', async () => {
    const first = await start();
    const refused = startServer(first.dataDir);
    await expect(refused).rejects.toThrow(
      new RegExp(
        `another server \\(pid ${first.process.pid} on host ${hostname()}, started \\d{4}-\\d\\d-\\d\\dT[^)]+\\) holds the lock on ${join(first.dataDir, 'server.lock')}`,
      ),
    );
    // The first one is untouched.
    expect((await api(first.url, 'GET', '/healthz')).status).toBe(200);
  });

  it('kill -9 of the server releases the lock: a new server starts on the directory at once', async () => {
    const first = await start();
    await first.kill9();
    const second = await start(first.dataDir);
    expect((await api(second.url, 'GET', '/v1/tenants', { token: first.adminToken })).status).toBe(200);
  });

  it("a copy (cp -r) of a live server's directory carries no lock: a second server starts on the copy", async () => {
    const first = await start();
    const copy = join(dirname(first.dataDir), 'copy');
    cpSync(first.dataDir, copy, { recursive: true });
    const second = await start(copy);
    expect((await api(second.url, 'GET', '/healthz')).status).toBe(200);
    expect((await api(first.url, 'GET', '/healthz')).status).toBe(200);
    // Both directories are locked now, each by its own server.
    await expect(startServer(copy)).rejects.toThrow(`another server (pid ${second.process.pid} on host`);
    await expect(startServer(first.dataDir)).rejects.toThrow(`another server (pid ${first.process.pid} on host`);
  });

  it('leaves no pid file behind to go stale', async () => {
    const server = await start();
    expect(existsSync(join(server.dataDir, 'server.pid'))).toBe(false);
  });
});
