/**
 * docs/operations.md, "Upgrade of a single server with SQLite", followed as written from the
 * previous release (0.1.0, built from this clone's history by test/upgrade/previous-release.ts) to
 * this one. The host is the one of "Install on a fresh Debian host": its unit, written by this
 * release's install-service (0.1.0 has none), runs 0.1.0's package laid out where npm puts it, which
 * makes the data directory and a tenant. The block then runs with one line changed, as the section
 * says for 0.1.0: its backup is a copy of the stopped directory, since 0.1.0 has no `backup`. The
 * host's paths live under a temporary root, and systemctl, npm and friends are stand-ins
 * (test/support/operations-doc.ts); the port is a free one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SpawnSyncReturns } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestMigration } from '../../src/store/migrations.js';
import { VERSION } from '../../src/version.js';
import { freePort, makeOpsHost, operationsBlock, withLine, type OpsHost } from '../support/operations-doc.js';
import { buildPreviousRelease, PREVIOUS_RELEASE } from '../upgrade/previous-release.js';

const BACKUP_LINE = 'runuser -u ppn -- /opt/ppn/bin/service-vm-tenant backup --data-dir /var/lib/ppn --out /var/backups/ppn/before-upgrade.tar';
const COPY_LINE = 'cp -a /var/lib/ppn /var/backups/ppn/ppn-0.1.0';

describe(`docs/operations.md: upgrading a single SQLite server from ${PREVIOUS_RELEASE.version}`, () => {
  let host: OpsHost;
  let before: SpawnSyncReturns<string>;
  let upgrade: SpawnSyncReturns<string>;
  beforeAll(async () => {
    const previous = buildPreviousRelease();
    host = makeOpsHost();
    const port = await freePort();
    const onPort = (script: string) => host.rewrite(script).replaceAll('127.0.0.1:9221', `127.0.0.1:${port}`);

    // The install block's unit, written by this release; then the previous release's package in its place, serving.
    const unitLine = operationsBlock('ops-sqlite')
      .split('\n')
      .find((line) => line.includes(' install-service '))!;
    const unit = host.run(onPort(unitLine));
    expect(unit.status, unit.stderr).toBe(0);
    host.installRelease(join(previous.server, '../../../..'));
    before = host.run(
      onPort(
        [
          'systemctl enable --now ppn-tenant',
          'for i in $(seq 1 30); do curl -fs -o /dev/null http://127.0.0.1:9221/readyz && break; sleep 1; done',
          `curl -sS -X POST http://127.0.0.1:9221/v1/tenants -H "Authorization: Bearer $(cat /var/lib/ppn/admin.token)" -H 'Content-Type: application/json' \\`,
          `  -d '{"tenant_id":"before-upgrade","display_name":"Made by ${PREVIOUS_RELEASE.version}","max_vms":10,"storage_quota_gb":100,"api_rate_limit_rpm":600}' | jq -r .tenant_id`,
        ].join('\n'),
      ),
    );
    if (before.status !== 0) return;
    upgrade = host.run(onPort(withLine(operationsBlock('ops-upgrade'), BACKUP_LINE, COPY_LINE)));
  }, 300_000);
  afterAll(() => host.stopAll());

  it(`the host runs ${PREVIOUS_RELEASE.version} from the unit, with a tenant made through it`, () => {
    expect(before.status, `${before.stderr}\n${host.log('ppn-tenant')}`).toBe(0);
    expect(before.stdout).toBe('before-upgrade\n');
  });

  it('the section mentions the copy it says to make from 0.1.0 instead of the backup', () => {
    expect(readFileSync('docs/operations.md', 'utf8')).toContain(`\`${COPY_LINE}\``);
  });

  it('runs as written: stopped, backed up, the new release installed in place and started, ready with the new version, the tenant there and the ledger verified', () => {
    expect(upgrade.status, `${upgrade.stderr}\n${host.log('ppn-tenant')}`).toBe(0);
    const lines = upgrade.stdout.split('\n');
    expect(lines.slice(0, 5)).toEqual([
      PREVIOUS_RELEASE.version,
      VERSION,
      `{"status":"ready","version":"${VERSION}","background":"leader"}`,
      `{"version":"${VERSION}","store_schema":"${latestMigration()}"}`,
      'before-upgrade',
    ]);
    expect(lines[5]).toMatch(/^ledger verified: \d+ entries, /);
    expect(readdirSync(join(host.root, 'var/backups/ppn/ppn-0.1.0'))).toContain('ppn.sqlite');
    // The old server was stopped, not killed: it finished what it was doing.
    expect(host.log('ppn-tenant')).toContain('"signal":"SIGTERM","msg":"shutting down: finishing requests in flight"');
  });
});
