/**
 * docs/operations.md, "PostgreSQL with two replicas behind a TLS proxy", followed as written: two
 * replicas started from their units on one database, nginx terminating TLS in front of them with the
 * certificate the block makes, and requests over TLS through nginx reaching both. Changed from the
 * text: the database URL (a fresh database on the suite's throwaway server), free ports for 9231,
 * 9232 and 443, and the host's paths under a temporary root with stand-ins for systemctl and
 * friends (test/support/operations-doc.ts); nginx runs as a plain process with the block's
 * configuration inside a minimal nginx.conf. Needs PostgreSQL: the PostgreSQL half of the suite only.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, makeOpsHost, operationsBlock, startNginx, verifyUnit, withLine, type OpsHost } from '../support/operations-doc.js';
import { within } from '../support/server-process.js';
import { dropDatabase, freshDatabaseUrl } from '../support/stores.js';

const DOC_URL_LINE = '(umask 077; echo "PPN_DATABASE_URL=postgres://ppn:change-me@127.0.0.1:5432/ppn" > /etc/ppn/ppn-tenant-1.env)';

describe('docs/operations.md: two replicas on PostgreSQL behind nginx with TLS', () => {
  let host: OpsHost;
  let databaseUrl: string;
  let ports: { one: number; two: number; proxy: number };
  let nginx: ReturnType<typeof startNginx>;
  let replicas: SpawnSyncReturns<string>;
  let check: SpawnSyncReturns<string>;
  beforeAll(async () => {
    host = makeOpsHost();
    databaseUrl = (await freshDatabaseUrl())!;
    ports = { one: await freePort(), two: await freePort(), proxy: await freePort() };
    const onPorts = (text: string) => text.replaceAll('127.0.0.1:9231', `127.0.0.1:${ports.one}`).replaceAll('127.0.0.1:9232', `127.0.0.1:${ports.two}`);

    const setup = withLine(operationsBlock('ops-replicas'), DOC_URL_LINE, DOC_URL_LINE.replace(/postgres:\/\/\S+(?=" >)/, databaseUrl));
    replicas = host.run(onPorts(host.rewrite(setup)));
    if (replicas.status !== 0) return;

    const server = withLine(operationsBlock('ops-nginx', 'nginx'), '    listen 443 ssl;', `    listen 127.0.0.1:${ports.proxy} ssl;`);
    nginx = startNginx(join(host.root, 'nginx'), onPorts(host.rewrite(server)));
    const listening = await within(10_000, async () => spawnSync('curl', ['-ks', '-o', '/dev/null', `https://127.0.0.1:${ports.proxy}/healthz`]).status === 0, 50);
    if (listening === null) throw new Error(`nginx did not start:\n${nginx.errors()}`);

    let proxied = withLine(operationsBlock('ops-proxy-check'), 'PPN=https://ppn.example.internal', `PPN=https://ppn.example.internal:${ports.proxy}`);
    proxied = withLine(
      proxied,
      'TLS="--cacert /etc/ppn/tls.crt --resolve ppn.example.internal:443:127.0.0.1"',
      `TLS="--cacert /etc/ppn/tls.crt --resolve ppn.example.internal:${ports.proxy}:127.0.0.1"`,
    );
    proxied = proxied.replace('for port in 9231 9232; do', `for port in ${ports.one} ${ports.two}; do`);
    check = host.run(onPorts(host.rewrite(proxied)));
  }, 120_000);
  afterAll(async () => {
    if (nginx) {
      const ended = new Promise((done) => nginx.process.once('exit', done));
      nginx.process.kill('SIGTERM');
      await ended;
    }
    await host.stopAll();
    await dropDatabase(databaseUrl);
  });

  it('the replicas block runs as written: two units, both replicas ready on the one database', () => {
    expect(replicas.status, `${replicas.stderr}\n${host.log('ppn-tenant-1')}\n${host.log('ppn-tenant-2')}`).toBe(0);
    const warnings = replicas.stderr.split('\n').filter((line) => line !== '' && !/^warning: \S+ is hidden from the service by PrivateTmp=yes/.test(line));
    expect(warnings).toEqual([]);
    for (const name of ['ppn-tenant-1', 'ppn-tenant-2']) {
      const file = join(host.root, 'etc/systemd/system', `${name}.service`);
      expect(replicas.stdout).toContain(`wrote ${file}\n`);
      expect(verifyUnit(file)).toEqual({ ok: true, output: '' });
    }
    expect(host.log('ppn-tenant-1')).toContain('store: postgres');
    expect(host.log('ppn-tenant-2')).toContain('store: postgres');
  });

  it('through nginx over TLS, requests alternate between the leader and the standby', () => {
    expect(check.status, `${check.stderr}\n${nginx.errors()}`).toBe(0);
    expect(check.stderr).toBe('');
    expect(check.stdout).toMatch(/^ +2 leader\n +2 standby\n/);
  });

  it('a tenant created through the proxy is read back from each replica directly', () => {
    expect(check.stdout).toContain('{"tenant_id":"acme-corp","state":"active"}\n');
    expect(check.stdout).toContain(`acme-corp on ${ports.one}\nacme-corp on ${ports.two}\n`);
  });

  it('curl without the certificate the block made refuses the proxy', () => {
    const refused = spawnSync('curl', ['-sS', '--resolve', `ppn.example.internal:${ports.proxy}:127.0.0.1`, `https://ppn.example.internal:${ports.proxy}/healthz`], {
      encoding: 'utf8',
    });
    expect(refused.status).toBe(60);
    expect(refused.stderr).toContain('self-signed certificate');
  });
});
