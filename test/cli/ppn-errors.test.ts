/**
 * What a user sees when `ppn` is refused (issue 12): the built CLI against a real server process,
 * each unhappy path with its message on stderr and its exit code: 3 when the server cannot be
 * reached, 2 for a wrong command line, 1 for a refusal, which says what to do next.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ppnUser } from '../support/ppn-cli.js';
import { startServer, within, type ServerProcess } from '../support/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'ppn-errors-'));
const { ppn, ok } = ppnUser();

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as { port: number };
  await new Promise((done) => probe.close(done));
  return port;
}

describe('ppn refusals, as a user reads them', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
    writeFileSync(join(dir, 'admin.token'), `${server.adminToken}\n`);
    ok('remote', 'add', 'local', server.url, '--token-file', join(dir, 'admin.token'));
    ok('tenant', 'create', 'acme-corp', '--max-vms', '1', '--rate-limit', '5');
    ok('keygen', '--out', join(dir, 'acme.key'));
    ok(
      'token',
      'issue',
      '--key-file',
      join(dir, 'acme.key'),
      '--scope',
      'service:tenant-admin',
      '--expires-in',
      '1d',
      '--pop',
      '--tenant',
      'acme-corp',
      '--out',
      join(dir, 'acme.token'),
    );
    ok('remote', 'add', 'acme', server.url, '--token-file', join(dir, 'acme.token'), '--key', join(dir, 'acme.key'));
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('an unreachable server exits 3, naming the URL, the remote and what to check', async () => {
    const port = await closedPort();
    ok('remote', 'add', 'gone', `http://127.0.0.1:${port}`, '--token-file', join(dir, 'admin.token'));
    const result = ppn('vm', 'list', '--remote', 'gone');
    expect(result.status).toBe(3);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(new RegExp(`^error: cannot reach http://127\\.0\\.0\\.1:${port} \\(remote "gone"\\): .*ECONNREFUSED`));
    expect(result.stderr).toContain('Is the server running there? "ppn remote list" shows the saved URLs');
  });

  it('an unknown remote, a bad option value and an unknown command are usage errors (exit 2) that list what is valid', () => {
    const unknown = ppn('whoami', '--remote', 'prod');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^error: no remote named "prod"; the remotes are local, acme, .*\(add one with: ppn remote add prod URL --token-file FILE\)\n$/);
    const scope = ppn('token', 'issue', '--subject', 'x', '--scope', 'tenant:write', '--expires-in', '1h');
    expect(scope.status).toBe(2);
    expect(scope.stderr).toContain(
      'unknown scope "tenant:write"; scopes are service:platform-admin, service:tenant-admin, tenant:input, tenant:user, tenant:read, node:agent',
    );
    const duration = ppn('token', 'issue', '--subject', 'x', '--scope', 'tenant:read', '--expires-in', '3 weeks');
    expect(duration.status).toBe(2);
    expect(duration.stderr).toContain('--expires-in wants a duration such as 90d, 12h, 30m, 45s or 1h30m (or seconds)');
    const shell = ppn('completion', 'fish');
    expect(shell.status).toBe(2);
    expect(shell.stderr).toContain('SHELL must be one of bash, zsh');
    expect(ppn('vms', 'list').status).toBe(2);
  });

  it('a quota refusal shows the limit and the usage, and what to do', () => {
    ok('vm', 'create', 'web-1', '--remote', 'acme');
    const result = ppn('vm', 'create', 'web-2', '--remote', 'acme');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /^error: Quota exceeded \(429 quota_exceeded\)\n {2}creating this VM would exceed the tenant's max_vms quota \(limit 1, used 1, requested 1\)\n {2}vms: limit 1, used 1, requested 1 \(over max_vms\)\n {2}Next: free some \(ppn vm delete NAME\), or ask a platform admin to raise the limit/,
    );
  });

  it('a pop token signed by the wrong key is refused, saying the key is not the holder', () => {
    ok('keygen', '--out', join(dir, 'stranger.key'));
    ok('remote', 'add', 'stranger', server.url, '--token-file', join(dir, 'acme.token'), '--key', join(dir, 'stranger.key'));
    const result = ppn('whoami', '--remote', 'stranger');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('(401 unauthenticated)');
    expect(result.stderr).toContain(`Next: the key ${join(dir, 'stranger.key')} is not this token's holder`);
    ok('remote', 'add', 'unsigned', server.url, '--token-file', join(dir, 'acme.token'));
    expect(ppn('whoami', '--remote', 'unsigned').stderr).toContain("Next: this token demands proof of possession: give its holder's private key");
  });

  it('a revoked token is refused, saying so and to ask for a new one', () => {
    ok('keygen', '--out', join(dir, 'bob.key'));
    const id = ok(
      'token',
      'issue',
      '--key-file',
      join(dir, 'bob.key'),
      '--scope',
      'tenant:read',
      '--expires-in',
      '1h',
      '--tenant',
      'acme-corp',
      '--out',
      join(dir, 'bob.token'),
      '-q',
    ).trim();
    ok('remote', 'add', 'bob', server.url, '--token-file', join(dir, 'bob.token'));
    ok('whoami', '--remote', 'bob');
    ok('token', 'revoke', id, '--tenant', 'acme-corp');
    const result = ppn('whoami', '--remote', 'bob');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /^error: Unauthenticated \(401 unauthenticated\)\n {2}token has been revoked\n {2}Next: the token was revoked .*ask a tenant admin for a new one\./,
    );
  });

  it('an expired token is refused, saying how to get a new one', async () => {
    ok('keygen', '--out', join(dir, 'brief.key'));
    ok(
      'token',
      'issue',
      '--key-file',
      join(dir, 'brief.key'),
      '--scope',
      'tenant:read',
      '--expires-in',
      '1s',
      '--tenant',
      'acme-corp',
      '--out',
      join(dir, 'brief.token'),
    );
    ok('remote', 'add', 'brief', server.url, '--token-file', join(dir, 'brief.token'));
    const issued = Date.now();
    // The token lives one second (its times are whole seconds): wait out two by the clock, then ask
    // once, rather than poll the server and spend the tenant's small rate limit meanwhile.
    await within(10_000, async () => Date.now() - issued > 2100, 100);
    const result = ppn('whoami', '--remote', 'brief');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('token has expired');
    expect(result.stderr).toContain(
      'Next: the token has expired: ask a tenant admin for a new one ("ppn token issue … --out FILE"), then "ppn remote add NAME URL --token-file FILE".',
    );
  });

  it('the rate limit refusal says when to retry', async () => {
    let result = ppn('whoami', '--remote', 'acme');
    // acme-corp may make 5 requests a minute; the earlier tests used some of them.
    expect(await within(30_000, async () => (result = ppn('whoami', '--remote', 'acme')).status !== 0, 0)).not.toBeNull();
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /^error: Rate limit exceeded \(429 rate_limited\)\n {2}tenant acme-corp exceeded 5 requests per minute\n {2}retry in \d+ s\n {2}Next: wait, then run the command again/,
    );
  });
});
