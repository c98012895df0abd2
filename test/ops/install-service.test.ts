/**
 * `install-service` writes systemd units that systemd itself accepts: `systemd-analyze verify` checks
 * every directive and that ExecStart's program exists, and prints a warning (still exiting 0) for an
 * unknown directive, so a unit passes only when verify exits 0 and prints nothing at all.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyUnit } from '../support/operations-doc.js';
import { CLI, runCli } from '../support/server-process.js';

/** The unit's `Key=value` lines, comments left out; a key given twice keeps every value. */
function directives(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) map.set(match[1]!, [...(map.get(match[1]!) ?? []), match[2]!]);
  }
  return map;
}

const HARDENING = {
  NoNewPrivileges: 'yes',
  ProtectSystem: 'strict',
  ProtectHome: 'yes',
  PrivateTmp: 'yes',
  ProtectKernelTunables: 'yes',
  ProtectControlGroups: 'yes',
  RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
  LockPersonality: 'yes',
};

describe('install-service', () => {
  let unitDir: string;
  let tenant: string;
  let host: string;
  beforeAll(() => {
    unitDir = mkdtempSync(join(tmpdir(), 'ppn-units-'));
    const wrote = runCli(CLI.server, ['install-service', '--unit-dir', unitDir]);
    expect(wrote.status, wrote.stderr).toBe(0);
    expect(wrote.stdout).toContain(`wrote ${join(unitDir, 'ppn-tenant.service')}\nnext, as root:\n`);
    expect(wrote.stdout).toContain('  systemctl daemon-reload\n  systemctl enable --now ppn-tenant\n');
    const hostWrote = runCli(CLI.host, ['install-service', '--unit-dir', unitDir]);
    expect(hostWrote.status, hostWrote.stderr).toBe(0);
    tenant = readFileSync(join(unitDir, 'ppn-tenant.service'), 'utf8');
    host = readFileSync(join(unitDir, 'ppn-host.service'), 'utf8');
  });

  it('the server and agent units pass systemd-analyze verify with no warning', () => {
    for (const name of ['ppn-tenant.service', 'ppn-host.service']) {
      const verified = verifyUnit(join(unitDir, name));
      expect(verified.output, name).toBe('');
      expect(verified.ok).toBe(true);
    }
  });

  it('a unit with a misspelt directive fails the check', () => {
    const bad = join(unitDir, 'ppn-typo.service');
    writeFileSync(bad, tenant.replace('\nProtectHome=yes\n', '\nProtectHom=yes\n'));
    const verified = verifyUnit(bad);
    expect(verified.ok).toBe(false);
    expect(verified.output).toContain("Unknown key 'ProtectHom'");
  });

  it('systemd-analyze security scores both units at most 4.0 (OK)', () => {
    for (const name of ['ppn-tenant.service', 'ppn-host.service']) {
      const scored = spawnSync('systemd-analyze', ['security', '--offline=yes', '--threshold=40', join(unitDir, name)], { encoding: 'utf8' });
      expect(scored.status, scored.stdout).toBe(0);
    }
  });

  it('the server runs under node directly as the ppn user, in /var/lib/ppn, sandboxed, reloading on SIGHUP', () => {
    const unit = directives(tenant);
    expect(unit.get('ExecStart')).toEqual([`${process.execPath} ${CLI.server} serve --data-dir /var/lib/ppn --listen 127.0.0.1:9221`]);
    expect(unit.get('Type')).toEqual(['simple']);
    expect(unit.get('User')).toEqual(['ppn']);
    expect(unit.get('Group')).toEqual(['ppn']);
    expect(unit.get('StateDirectory')).toEqual(['ppn']);
    expect(unit.get('StateDirectoryMode')).toEqual(['0700']);
    expect(unit.get('Restart')).toEqual(['on-failure']);
    expect(unit.get('ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
    expect(unit.get('KillSignal')).toEqual(['SIGTERM']);
    expect(unit.get('EnvironmentFile')).toEqual(['-/etc/ppn/ppn-tenant.env']);
    expect(unit.get('PrivateDevices')).toEqual(['yes']);
    for (const [key, value] of Object.entries(HARDENING)) expect(unit.get(key), key).toEqual([value]);
    // V8's JIT writes code it then runs: the option would crash node. The unit says so in a comment.
    expect(unit.has('MemoryDenyWriteExecute')).toBe(false);
    expect(tenant).toMatch(/^# MemoryDenyWriteExecute=yes is left off: V8/m);
  });

  it('the agent may open /dev/kvm, and a stop or restart signals the agent alone, so its QEMU processes stay', () => {
    const unit = directives(host);
    expect(unit.get('ExecStart')).toEqual([`${process.execPath} ${CLI.host} run --state-dir /var/lib/ppn-host`]);
    expect(unit.get('User')).toEqual(['ppn-host']);
    expect(unit.get('StateDirectory')).toEqual(['ppn-host']);
    expect(unit.get('DeviceAllow')).toEqual(['/dev/kvm rw']);
    expect(unit.get('SupplementaryGroups')).toEqual(['kvm']);
    expect(unit.get('KillMode')).toEqual(['process']);
    expect(unit.has('PrivateDevices')).toBe(false);
    for (const [key, value] of Object.entries(HARDENING)) expect(unit.get(key), key).toEqual([value]);
  });

  it('--print writes nothing; a data directory outside /var/lib, with a space, is quoted and made writable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ppn-units-'));
    const printed = runCli(CLI.server, [
      'install-service',
      '--print',
      '--unit-dir',
      dir,
      '--name',
      'ppn-replica-2',
      '--data-dir',
      '/srv/ppn data',
      '--listen',
      '127.0.0.1:9232',
      '--',
      '--log-level',
      'warn',
    ]);
    expect(printed.status, printed.stderr).toBe(0);
    expect(existsSync(join(dir, 'ppn-replica-2.service'))).toBe(false);
    const unit = directives(printed.stdout);
    expect(unit.get('ExecStart')).toEqual([`${process.execPath} ${CLI.server} serve --data-dir "/srv/ppn data" --listen 127.0.0.1:9232 --log-level warn`]);
    expect(unit.get('ReadWritePaths')).toEqual(['"/srv/ppn data"']);
    expect(unit.has('StateDirectory')).toBe(false);
    expect(unit.get('EnvironmentFile')).toEqual(['-/etc/ppn/ppn-replica-2.env']);
    writeFileSync(join(dir, 'ppn-replica-2.service'), printed.stdout);
    expect(verifyUnit(join(dir, 'ppn-replica-2.service'))).toEqual({ ok: true, output: '' });
  });

  it('refuses a database URL on the command line (it may hold a password) and a malformed --listen', () => {
    const url = runCli(CLI.server, ['install-service', '--print', '--', '--database-url', 'postgres://ppn:secret@db/ppn']);
    expect(url.status).toBe(2);
    expect(url.stdout).toBe('');
    expect(url.stderr).toBe('error: a database URL may hold a password: put PPN_DATABASE_URL=... in /etc/ppn/ppn-tenant.env (mode 0600) instead of --database-url\n');
    const listen = runCli(CLI.server, ['install-service', '--print', '--listen', 'localhost']);
    expect(listen.status).toBe(2);
    expect(listen.stderr).toContain('--listen wants HOST:PORT');
  });

  it('refuses a state directory that climbs out with "..", and a line break that would start another directive', () => {
    const climbing = runCli(CLI.host, ['install-service', '--print', '--state-dir', '/var/lib/../etc']);
    expect(climbing.status).toBe(2);
    expect(climbing.stdout).toBe('');
    expect(climbing.stderr).toContain('the state directory must be a plain absolute path');
    const injected = runCli(CLI.host, ['install-service', '--print', '--', '--log-level', 'info\nExecStartPre=/bin/sh -c id']);
    expect(injected.status).toBe(2);
    expect(injected.stdout).toBe('');
    expect(injected.stderr).toBe('error: an option for the unit holds a line break\n');
  });
});
