/**
 * `ppn` as an operator and a tenant admin use it (issue 12): the built CLI as a child process
 * against a real `service-vm-tenant serve` process, with its remotes in a configuration directory of
 * the test's own. Every command runs end to end, in tables and in `--json` (parsed), including a
 * remote whose token demands proof of possession, so that every request is signed.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ppnUser } from '../support/ppn-cli.js';
import { startServer, type ServerProcess } from '../support/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'ppn-client-'));
const { config, ppn, ok, json } = ppnUser();

describe('ppn against a real server', () => {
  let server: ServerProcess;
  let adminPub: string;

  beforeAll(async () => {
    server = await startServer();
    writeFileSync(join(dir, 'admin.token'), `${server.adminToken}\n`);
    ppn('remote', 'add', 'local', server.url, '--token-file', join(dir, 'admin.token'));
    adminPub = ok('keygen', '--out', join(dir, 'acme-admin.key')).trim();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('remote add saves the remote in a 0600 file and makes the first one current; whoami says who the token is', () => {
    const file = join(config, 'ppn', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ current: 'local', remotes: { local: { url: server.url, token_file: join(dir, 'admin.token') } } });
    expect(json('remote', 'list')).toEqual([
      { name: 'local', url: server.url, current: true, token: join(dir, 'admin.token'), key: '-', ca: '-', client_cert: '-', insecure: false },
    ]);
    expect(ok('whoami')).toMatch(/^tenant +\(none: platform\)$/m);
    expect(json('whoami')).toMatchObject({ tenant_id: null, scope: ['service:platform-admin'] });
  });

  it('tenant create, list and show: the show prints each limit against its usage', () => {
    expect(json('tenant', 'create', 'acme-corp', '--display-name', 'Acme Corporation', '--max-vms', '3', '--storage-gb', '100', '--max-vcpus', '8')).toMatchObject({
      tenant_id: 'acme-corp',
      max_vms: 3,
      max_vcpus: 8,
    });
    expect(ok('tenant', 'list', '-q')).toBe('acme-corp\n');
    expect(json('tenant', 'list')).toMatchObject([{ tenant_id: 'acme-corp', usage: { vms: 0 } }]);
    const shown = ok('tenant', 'show', 'acme-corp');
    expect(shown).toMatch(/^RESOURCE +LIMIT +USAGE$/m);
    expect(shown).toMatch(/^vms +3 +0$/m);
    expect(shown).toMatch(/^storage +100 GB +0 GB$/m);
    expect(shown).toMatch(/^vcpus +8 +0$/m);
    expect(shown).toMatch(/^memory +unlimited +0 MB$/m);
    expect(shown).toMatch(/^api rate +600\/min +-$/m);
  });

  it('token issue writes the token to a 0600 file; a pop remote made of it signs every request', () => {
    const out = join(dir, 'acme-admin.token');
    const issued = json(
      'token',
      'issue',
      '--key-file',
      join(dir, 'acme-admin.key.pub'),
      '--scope',
      'service:tenant-admin',
      '--expires-in',
      '1d',
      '--pop',
      '--name',
      'acme admin',
      '--tenant',
      'acme-corp',
      '--out',
      out,
    );
    expect(issued).toMatchObject({ tenant_id: 'acme-corp', subject_pubkey: adminPub, proof_of_possession: true, name: 'acme admin', token_file: out });
    expect(issued.token).toBeUndefined();
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(out, 'utf8')).toMatch(/^pct1\.\S+\n$/);
    // Without --force an existing file is kept, and nothing is issued.
    const again = ppn('token', 'issue', '--key-file', join(dir, 'acme-admin.key'), '--scope', 'tenant:read', '--expires-in', '1h', '--tenant', 'acme-corp', '--out', out);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain(`${out} exists; pass --force to overwrite it`);

    ok('remote', 'add', 'acme', server.url, '--token-file', out, '--key', join(dir, 'acme-admin.key'), '--use');
    expect(json('whoami')).toMatchObject({ tenant_id: 'acme-corp', token_id: issued.token_id, name: 'acme admin' });
    // The same token without its key is refused: the remote's key is what made it work.
    ok('remote', 'add', 'acme-unsigned', server.url, '--token-file', out);
    expect(ppn('whoami', '--remote', 'acme-unsigned').status).toBe(1);
  });

  it('vm create by name, list, show, stop and delete, names standing for ids', () => {
    const created = json('vm', 'create', 'web-1', '--vcpus', '2', '--memory', '2G', '--disk', '5');
    expect(created).toMatchObject({ name: 'web-1', vcpus: 2, memory_mb: 2048, disk_gb: 5, state: 'pending' });
    expect(ok('vm', 'create', 'web-2', '--disk', '5', '-q')).toMatch(/^vm-[0-9a-z]{26}\n$/);
    const table = ok('vm', 'list');
    expect(table).toMatch(/^NAME +STATE +VCPUS +MEMORY +DISK +NODE +REASON$/m);
    expect(table).toMatch(/^web-1 +pending +2 +2048 MB +5 GB +- +(no ready fleet node in this tenant|waiting for the scheduler)$/m);
    expect(json('vm', 'list').map((vm: { name: string }) => vm.name)).toEqual(['web-1', 'web-2']);
    expect(json('vm', 'show', 'web-1')).toMatchObject({ vm_id: created.vm_id });
    expect(json('vm', 'show', created.vm_id)).toMatchObject({ name: 'web-1' });
    expect(json('vm', 'stop', 'web-1')).toMatchObject({ vm_id: created.vm_id, desired_state: 'stopped' });
    expect(json('vm', 'delete', 'web-2')).toEqual({ vm_id: expect.stringMatching(/^vm-/), deleted: true });
    expect(ok('vm', 'list', '-q')).toBe(`${created.vm_id}\n`);
    expect(json('vm', 'console', 'web-1')).toMatchObject({ vm_id: created.vm_id, data: '' });
    expect(json('tenant', 'show', 'acme-corp')).toMatchObject({ usage: { vms: 1, vcpus: 2, memory_mb: 2048 } });
  });

  it('token delegate, inspect, then list and revoke by name: the delegated token is refused after', async () => {
    const buildPub = ok('keygen', '--out', join(dir, 'build.key')).trim();
    const buildToken = join(dir, 'build.token');
    writeFileSync(
      buildToken,
      ok(
        'token',
        'delegate',
        '--token',
        join(dir, 'acme-admin.token'),
        '--key',
        join(dir, 'acme-admin.key'),
        '--subject',
        buildPub,
        '--scope',
        'TENANT:INPUT',
        '--expires-in',
        '30m',
        '--name',
        'build box',
      ),
    );
    const inspected = json('token', 'inspect', buildToken);
    expect(inspected.blocks).toHaveLength(2);
    expect(inspected.blocks[1]).toMatchObject({ holder: buildPub, scopes: ['tenant:input'], name: 'build box' });
    ok('remote', 'add', 'build', server.url, '--token-file', buildToken, '--key', join(dir, 'build.key'), '--inline');
    expect(json('whoami', '--remote', 'build')).toMatchObject({ token_id: inspected.token_id, name: 'build box' });

    const readerPub = ok('keygen', '--out', join(dir, 'reader.key')).trim();
    const reader = json('token', 'issue', '--subject', readerPub, '--scope', 'tenant:read', '--expires-in', '12h', '--name', 'reader');
    expect(reader.token).toMatch(/^pct1\./);
    expect(json('token', 'list').map((t: { name: string }) => t.name)).toEqual(['acme admin', 'reader']);
    // Issued for 12 hours: within the same minute it reads "in 12h", after that "in 11h59m".
    expect(ok('token', 'list')).toMatch(/^tok-\S+ +reader +tenant:read +yes +in (12h|11h59m) +active$/m);
    expect(json('token', 'revoke', 'reader')).toMatchObject({ token_id: reader.token_id, revoked_at: expect.any(String) });
    expect(json('token', 'list').find((t: { name: string }) => t.name === 'reader')).toMatchObject({ revoked_at: expect.any(String) });

    // The server writes session use at most once a second (src/control/sessions.ts): the build box's
    // whoami shows in the list after the next flush, however fast the commands above ran.
    await vi.waitFor(() => expect(json('session', 'list').map((s: { token_id: string }) => s.token_id)).toContain(inspected.token_id), {
      timeout: 5000,
      interval: 250,
    });
    expect(json('session', 'end', 'build box')).toMatchObject({ token_id: inspected.token_id, revoked: true });
    const refused = ppn('whoami', '--remote', 'build');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('token has been revoked');
  });

  it('tenant set, suspend, resume and node list; a platform admin deletes the tenant with --cascade', () => {
    expect(json('tenant', 'set', 'acme-corp', 'max_vms=5', 'max_vcpus=unlimited', 'shared_pool=TRUE', '--remote', 'local')).toMatchObject({
      max_vms: 5,
      max_vcpus: null,
      shared_pool: true,
    });
    expect(json('tenant', 'suspend', 'acme-corp', '--remote', 'local')).toMatchObject({ state: 'suspended' });
    expect(ppn('vm', 'create', 'web-3').stderr).toContain('(403 tenant_suspended)');
    expect(json('tenant', 'resume', 'acme-corp', '--remote', 'local')).toMatchObject({ state: 'active' });
    expect(json('node', 'list')).toEqual([]);
    expect(json('tenant', 'delete', 'acme-corp', '--cascade', '--remote', 'local')).toEqual({ tenant_id: 'acme-corp', deleted: true });
    expect(json('tenant', 'list', '--remote', 'local')).toEqual([]);
  });

  it('remote use switches the current remote; remote remove forgets it', () => {
    ok('remote', 'use', 'local');
    expect(json('whoami').tenant_id).toBeNull();
    ok('remote', 'remove', 'acme-unsigned');
    expect(json('remote', 'list').map((r: { name: string }) => r.name)).toEqual(['local', 'acme', 'build']);
  });
  it('a saved inline key that was edited into something else is refused in one line naming the remote', () => {
    const file = join(config, 'ppn', 'config.json');
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { remotes: Record<string, { key?: string }> };
    expect(saved.remotes.build!.key).toContain('PRIVATE KEY');
    saved.remotes.build!.key = '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n';
    writeFileSync(file, JSON.stringify(saved));
    const refused = ppn('whoami', '--remote', 'build');
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/the key of .*build.* is not an Ed25519 private key in PEM \(make one with ppn keygen\)/);
  });
});
