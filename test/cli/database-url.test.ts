/**
 * Where the state lives, as `--database-url`, PPN_DATABASE_URL and <data-dir>/database.url say: only
 * PostgreSQL URLs are taken, a URL is remembered only once it has worked, every failure to reach the
 * database says which URL and where it came from (never its password), and `--database-url ""` goes
 * back to SQLite. Real processes; the unreachable database is a closed port on this machine.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initDataDir, writeLedgerPublicKey } from '../../src/config/data-dir.js';
import { CLI, runCli, serversStoppedAfterEach, tempDataDir } from '../support/server-process.js';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((done) => server.once('listening', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

function serve(dataDir: string, args: string[], env: Record<string, string> = {}) {
  return runCli(CLI.server, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0', ...args], env);
}

describe('--database-url and where the state lives', () => {
  const start = serversStoppedAfterEach();

  it.each([
    ['mysql://ppn:s3cret@db.internal/ppn', 'a mysql: URL'],
    ['sqlite:///var/lib/ppn.sqlite', 'a sqlite: URL'],
    ['db.internal:5432', 'a db.internal: URL'],
  ])('%s is refused at once, naming --database-url, and nothing is created or remembered', (url, what) => {
    const dataDir = tempDataDir();
    const result = serve(dataDir, ['--database-url', url]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(new RegExp(`^error: the database URL from --database-url is ${what}; only PostgreSQL is supported \\(postgres://`));
    expect(result.stderr).not.toContain('s3cret');
    expect(existsSync(join(dataDir, 'database.url'))).toBe(false);
  });

  it('a non-PostgreSQL PPN_DATABASE_URL is refused by every command, naming PPN_DATABASE_URL', () => {
    const dataDir = tempDataDir();
    const env = { PPN_DATABASE_URL: 'mysql://ppn@db.internal/ppn' };
    for (const result of [
      serve(dataDir, [], env),
      runCli(CLI.server, ['admin-token', '--data-dir', dataDir], env),
      runCli(CLI.fs, ['read', '--data-dir', dataDir], env),
    ]) {
      expect(result.status).toBe(2);
      expect(result.stderr).toContain('error: the database URL from PPN_DATABASE_URL is a mysql: URL');
    }
  });

  it('a PostgreSQL URL that cannot be reached is not remembered, and the error names it (password hidden) and its source', async () => {
    const dataDir = tempDataDir();
    const port = await closedPort();
    const result = serve(dataDir, ['--database-url', `postgres://ppn:s3cret@127.0.0.1:${port}/ppn`]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `error: cannot reach the PostgreSQL database postgres://ppn:***@127.0.0.1:${port}/ppn (the URL from --database-url): connect ECONNREFUSED 127.0.0.1:${port}`,
    );
    expect(result.stderr).not.toContain('s3cret');
    expect(existsSync(join(dataDir, 'database.url'))).toBe(false);

    const fromEnv = runCli(CLI.fs, ['read', '--data-dir', dataDir], { PPN_DATABASE_URL: `postgresql://ppn:s3cret@127.0.0.1:${port}/ppn` });
    expect(fromEnv.status).toBe(1);
    expect(fromEnv.stderr).toContain('(the URL from PPN_DATABASE_URL): connect ECONNREFUSED');
  });

  it('a remembered URL that no longer works is named as remembered in database.url by every command, and --database-url "" forgets it for SQLite', async () => {
    const dataDir = tempDataDir();
    // What an earlier serve on PostgreSQL left: the keys, ledger.pub and the URL.
    initDataDir(dataDir);
    writeLedgerPublicKey(dataDir);
    const port = await closedPort();
    writeFileSync(join(dataDir, 'database.url'), `postgres://ppn:s3cret@127.0.0.1:${port}/ppn\n`, { mode: 0o600 });
    const source = `(the URL from ${join(dataDir, 'database.url')}, remembered by an earlier serve): connect ECONNREFUSED`;
    for (const result of [
      serve(dataDir, []),
      runCli(CLI.server, ['admin-token', '--data-dir', dataDir]),
      runCli(CLI.fs, ['read', '--data-dir', dataDir]),
      runCli(CLI.fs, ['verify', '--data-dir', dataDir]),
    ]) {
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(source);
      expect(result.stderr).not.toContain('s3cret');
    }

    const server = await start(dataDir, { args: ['--database-url', ''] });
    expect(server.output()).toContain(`forgot the PostgreSQL URL in ${join(dataDir, 'database.url')}`);
    expect(server.output()).toContain(`store: ${join(dataDir, 'ppn.sqlite')})`);
    expect(existsSync(join(dataDir, 'database.url'))).toBe(false);
    // The other commands follow: nothing is remembered, so they read the SQLite file.
    const read = runCli(CLI.fs, ['read', '--data-dir', dataDir, '--event-type', 'TOKEN_ISSUED']);
    expect(read.status).toBe(0);
    expect(read.stdout).toMatch(/TOKEN_ISSUED/);
    expect(readFileSync(join(dataDir, 'admin.token'), 'utf8')).toBe(`${server.adminToken}\n`);
  });
});
