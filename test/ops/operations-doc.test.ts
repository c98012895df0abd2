/**
 * docs/operations.md followed as written on one host: "Install on a fresh Debian host (SQLite)",
 * then "Key rotation" on that server, the node agent's unit from "Service units", "Backup" and
 * "Restore" (a rollback into a new directory, served beside the first server), and "Monitoring"
 * (the server restarted with a metrics token). The host's paths live under a temporary root and
 * systemctl, runuser, useradd and install are stand-ins (test/support/operations-doc.ts); only the
 * ports are changed, to free ones.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SpawnSyncReturns } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';
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
  /** The unit as the install block wrote it, and systemd-analyze's word on it ("Monitoring" writes it again). */
  let installedUnit: string;
  let installedUnitCheck: ReturnType<typeof verifyUnit>;
  let keys: SpawnSyncReturns<string>;
  let agent: SpawnSyncReturns<string>;
  let backup: SpawnSyncReturns<string>;
  let restore: SpawnSyncReturns<string>;
  let metrics: SpawnSyncReturns<string>;
  beforeAll(async () => {
    host = makeOpsHost();
    port = await freePort();
    const restoredPort = await freePort();
    const onPort = (script: string) => host.rewrite(script).replaceAll('127.0.0.1:9221', `127.0.0.1:${port}`).replaceAll('127.0.0.1:9222', `127.0.0.1:${restoredPort}`);
    install = host.run(onPort(operationsBlock('ops-sqlite')));
    installedUnit = readFileSync(join(host.root, 'etc/systemd/system/ppn-tenant.service'), 'utf8');
    installedUnitCheck = verifyUnit(join(host.root, 'etc/systemd/system/ppn-tenant.service'));
    keys = host.run(onPort(operationsBlock('ops-keys')));
    agent = host.run(onPort(operationsBlock('ops-host')));
    backup = host.run(onPort(operationsBlock('ops-backup')));
    restore = host.run(onPort(operationsBlock('ops-restore')));
    metrics = host.run(onPort(operationsBlock('ops-metrics')));
  }, 120_000);
  afterAll(() => host.stopAll());

  describe('install on a fresh Debian host (SQLite)', () => {
    it('runs as written: the unit is written, the server answers ready, lists no tenant and its ledger verifies', () => {
      expect(install.status, `${install.stderr}\n${host.log('ppn-tenant')}`).toBe(0);
      expect(onlyInstallWarnings(install)).toEqual([]);
      const out = install.stdout;
      expect(out).toContain(`wrote ${join(host.root, 'etc/systemd/system/ppn-tenant.service')}\nnext, as root:\n`);
      expect(out).toContain(`{"status":"ready","version":"${VERSION}","background":"leader"}\n`);
      expect(out).toContain('{"items":[]}\n');
      expect(out).toMatch(/^ledger verified: 1 entries, /m);
    });

    it('the unit keeps the host paths, runs the installed package under node, and passes systemd-analyze verify', () => {
      const unit = installedUnit;
      const entry = join(host.root, 'opt/ppn/lib/node_modules/ppn-control-plane/dist/src/cli/service-vm-tenant.js');
      expect(unit).toContain(`\nExecStart=${process.execPath} ${entry} serve --data-dir /var/lib/ppn --listen 127.0.0.1:${port}\n`);
      expect(unit).toContain('\nUser=ppn\n');
      expect(unit).toContain('\nStateDirectory=ppn\n');
      expect(installedUnitCheck).toEqual({ ok: true, output: '' });
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

  describe('backup', () => {
    it('runs as written while the server serves: the tenant and its VMs made, a backup without keys and one with them, each file 0600', () => {
      expect(backup.status, backup.stderr).toBe(0);
      const dir = join(host.root, 'var/backups/ppn');
      const [dated] = readdirSync(dir).filter((name) => /^ppn-\d{8}T\d{6}Z\.tar$/.test(name));
      expect(dated).toBeDefined();
      const out = backup.stdout;
      expect(out).toContain('{"tenant_id":"acme-corp","state":"active"}\nweb-1\nweb-2\nweb-3\n');
      for (const file of [join(dir, dated!), join(dir, 'ppn-with-keys.tar')]) {
        expect(out).toMatch(
          new RegExp(`^backup written to ${file}: \\d+ ledger entries \\(the latest checkpoint at tree size \\d+\\), 3 VMs, 1 tenants, \\d+ bytes$`, 'm'),
        );
        expect(statSync(file).mode & 0o777).toBe(0o600);
      }
      expect(out).toContain('backup written to');
      expect(out).toContain('\nmanifest.json\nppn.sqlite\nledger.pub\nledger.state\n');
      expect(out).toMatch(/\nmanifest\.json\nppn\.sqlite\nledger\.pub\nledger\.state\nadmin\.token\n(keys\/\S+\n)+$/);
      for (const key of ['keys/keyset.kek', 'keys/ledger.pem', 'keys/admin.pem']) expect(out).toContain(`\n${key}\n`);
      expect(backup.stderr).toMatch(/^copied the store: \d+ pages$/m);
      expect(backup.stderr).toContain(`no keys in ${join(dir, dated!)}: a restore needs keys/keyset.kek, keys/ledger.pem, keys/admin.pem`);
      expect(backup.stderr).toContain(`WARNING: ${join(dir, 'ppn-with-keys.tar')} HOLDS THE PRIVATE KEYS`);
    });
  });

  describe('restore', () => {
    it('runs as written: the older backup refused against the newer checkpoint, then restored with LEDGER_ROLLED_BACK recorded, verified, and served with the tenant and the VMs it held', () => {
      expect(restore.status, `${restore.stderr}\n${host.log('ppn-restored')}`).toBe(0);
      const out = restore.stdout;
      const seen = join(host.root, 'var/backups/ppn/seen.checkpoint');
      // restore checks the backup's ledger as service-fs verify does, and says so, before it compares.
      expect(out).toMatch(/^web-4\nledger verified: \d+ entries, .*\nexit code 1\nledger verified: /);
      expect(restore.stderr).toMatch(
        new RegExp(
          `^error: the backup's ledger does not extend the checkpoint at tree size \\d+ \\(root [0-9a-f]{64}\\) that the checkpoint in ${seen} remembers: .* Nothing was restored\\.`,
          'm',
        ),
      );
      const restored = join(host.root, 'var/lib/ppn-restored');
      expect(out).toContain(`restored ${join(host.root, 'var/backups/ppn/ppn-with-keys.tar')} into ${restored}\n`);
      expect(out).toMatch(/^recorded LEDGER_ROLLED_BACK at index \d+, signed a checkpoint at size \d+ and remembered it$/m);
      expect(out).toMatch(/^ledger verified: \d+ entries, /m);
      expect(out).toContain(`{"status":"ready","version":"${VERSION}","background":"leader"}\n`);
      expect(out).toContain('{"tenant_id":"acme-corp","state":"active","vms":3}\nweb-1 web-2 web-3\n');
    });
  });

  describe('monitoring', () => {
    it('runs as written: the server restarted with the metrics token shows the tenant and ledger series to it, and 401 without it', () => {
      expect(metrics.status, `${metrics.stderr}\n${host.log('ppn-tenant')}`).toBe(0);
      expect(onlyInstallWarnings(metrics)).toEqual([]);
      expect(metrics.stdout).toContain(`replaced ${join(host.root, 'etc/systemd/system/ppn-tenant.service')}\n`);
      const unit = readFileSync(join(host.root, 'etc/systemd/system/ppn-tenant.service'), 'utf8');
      expect(unit).toContain(` --metrics-token /etc/ppn/metrics.token\n`);
      expect(statSync(join(host.root, 'etc/ppn/metrics.token')).mode & 0o777).toBe(0o600);
      expect(metrics.stdout).toContain(
        [
          'ppn_ledger_state{state="verified"} 1',
          'ppn_leader 1',
          'ppn_tenant_usage{tenant="acme-corp",resource="vms"} 4',
          'ppn_tenant_limit{tenant="acme-corp",resource="vms"} 10',
          'without the token: 401',
        ].join('\n') + '\n',
      );
    });
  });
});
