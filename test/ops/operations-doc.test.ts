/**
 * docs/operations.md followed as written on one host: "Install on a fresh Debian host (SQLite)",
 * then "Key rotation" on that server, then the node agent's unit from "Service units". The host's
 * paths live under a temporary root and systemctl, runuser, useradd and install are stand-ins
 * (test/support/operations-doc.ts); only the port is changed, to a free one.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SpawnSyncReturns } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeOpsHost, operationsBlock, verifyUnit, type OpsHost } from '../support/operations-doc.js';

/** stderr of a block that ran install-service from a temporary directory: only its warnings about that. */
function onlyInstallWarnings(result: SpawnSyncReturns<string>): string[] {
  return result.stderr
    .split('\n')
    .filter((line) => line !== '')
    .filter((line) => !/^warning: \S+ is hidden from the service by PrivateTmp=yes/.test(line) && !/^warning: this machine has no group kvm/.test(line));
}

describe('docs/operations.md on one host', () => {
  let host: OpsHost;
  let port: number;
  let install: SpawnSyncReturns<string>;
  let keys: SpawnSyncReturns<string>;
  let agent: SpawnSyncReturns<string>;
  beforeAll(async () => {
    host = makeOpsHost();
    port = await freePort();
    const onPort = (script: string) => host.rewrite(script).replaceAll('127.0.0.1:9221', `127.0.0.1:${port}`);
    install = host.run(onPort(operationsBlock('ops-sqlite')));
    keys = host.run(onPort(operationsBlock('ops-keys')));
    agent = host.run(onPort(operationsBlock('ops-host')));
  }, 120_000);
  afterAll(() => host.stopAll());

  describe('install on a fresh Debian host (SQLite)', () => {
    it('runs as written: the unit is written, the server answers ready, lists no tenant and its ledger verifies', () => {
      expect(install.status, `${install.stderr}\n${host.log('ppn-tenant')}`).toBe(0);
      expect(onlyInstallWarnings(install)).toEqual([]);
      const out = install.stdout;
      expect(out).toContain(`wrote ${join(host.root, 'etc/systemd/system/ppn-tenant.service')}\nnext, as root:\n`);
      expect(out).toContain('{"status":"ready","background":"leader"}');
      expect(out).toContain('{"items":[]}\n');
      expect(out).toMatch(/^ledger verified: 1 entries, /m);
    });

    it('the unit keeps the host paths, runs the installed package under node, and passes systemd-analyze verify', () => {
      const file = join(host.root, 'etc/systemd/system/ppn-tenant.service');
      const unit = readFileSync(file, 'utf8');
      const entry = join(host.root, 'opt/ppn/lib/node_modules/ppn-control-plane/dist/src/cli/service-vm-tenant.js');
      expect(unit).toContain(`\nExecStart=${process.execPath} ${entry} serve --data-dir /var/lib/ppn --listen 127.0.0.1:${port}\n`);
      expect(unit).toContain('\nUser=ppn\n');
      expect(unit).toContain('\nStateDirectory=ppn\n');
      expect(verifyUnit(file)).toEqual({ ok: true, output: '' });
    });

    it('the first start made a 0700 data directory with a 0600 admin token', () => {
      const dataDir = join(host.root, 'var/lib/ppn');
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dataDir, 'admin.token')).mode & 0o777).toBe(0o600);
    });
  });

  describe('key rotation', () => {
    it('runs as written: the old key retired, its admin token refused, the new one accepted', () => {
      expect(keys.status, keys.stderr).toBe(0);
      const out = keys.stdout;
      const kids = [...out.matchAll(/^([A-Za-z0-9_-]{11}) +(active|retired) /gm)].map((m) => ({ kid: m[1], state: m[2] }));
      expect(kids.map((k) => k.state).sort()).toEqual(['active', 'retired']);
      expect(out).toContain(`retired key ${kids.find((k) => k.state === 'retired')!.kid}: tokens it signed are refused from now on\n`);
      expect(out.split('\n')[0]).toBe(kids.find((k) => k.state === 'active')!.kid);
      expect(out).toContain('old admin token: 401\nnew admin token: 200\n');
      expect(keys.stderr).toMatch(/^key \S+ is active; \S+ still verifies until "keys retire \S+"\n$/);
    });
  });

  describe("the node agent's unit", () => {
    it('runs as written: the unit passes systemd-analyze verify and init prints the node key', () => {
      expect(agent.status, agent.stderr).toBe(0);
      expect(onlyInstallWarnings(agent)).toEqual([]);
      expect(agent.stdout).toContain(`wrote ${join(host.root, 'etc/systemd/system/ppn-host.service')}\n`);
      expect(agent.stdout).toMatch(/^[A-Za-z0-9_-]{43}$/m);
      expect(statSync(join(host.root, 'var/lib/ppn-host/node.pem')).mode & 0o777).toBe(0o600);
      const unit = readFileSync(join(host.root, 'etc/systemd/system/ppn-host.service'), 'utf8');
      expect(unit).toContain(' run --state-dir /var/lib/ppn-host\n');
      expect(unit).toContain('\nKillMode=process\n');
    });
  });
});
