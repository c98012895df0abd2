/**
 * Two API replicas on one PostgreSQL database (SPEC §1 scale-out): quotas and ledger order hold
 * across them. Each replica is a real server process with its own data directory holding the same
 * keys, as an operator deploys them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initDataDir, rememberDatabaseUrl } from '../../src/config/data-dir.js';
import { api, CLI, readLedgerJson, replicaDataDir, runCli, startServer, tempDataDir, type ServerProcess } from '../support/server-process.js';
import { QUOTA_EXCEEDED_TYPE } from '../../src/api/problem.js';
import { dbShell } from '../support/db-shell.js';
import { freshDatabaseUrl } from '../support/stores.js';

interface Entry {
  index: number;
  event_type: string;
  tenant_id: string | null;
}

describe('two replicas, one database', () => {
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    // Both start at once on an empty database: the migrations must run exactly once between them.
    const dataDir = tempDataDir();
    initDataDir(dataDir);
    const url = await freshDatabaseUrl();
    rememberDatabaseUrl(dataDir, url!);
    writeFileSync(join(dataDir, 'admin.token'), '');
    [a, b] = await Promise.all([startServer(dataDir), startServer(replicaDataDir(dataDir))]);
    a.adminToken = runCli(CLI.server, ['admin-token', '--data-dir', dataDir]).stdout.trim();
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  it('100 concurrent creates spread over both against max_vms=10: exactly 10 created, every decision in a gapless ledger', async () => {
    const created = await api(a.url, 'POST', '/v1/tenants', {
      token: a.adminToken,
      body: { tenant_id: 'split-co', display_name: 'Split', max_vms: 10, storage_quota_gb: 10_000, api_rate_limit_rpm: 10_000 },
    });
    expect(created.status).toBe(201);

    const attempts = await Promise.all(
      Array.from({ length: 100 }, (_, i) => api(i % 2 === 0 ? a.url : b.url, 'POST', '/v1/vms?tenant_id=split-co', { token: a.adminToken, body: { name: `vm-${i}` } })),
    );
    const statuses = attempts.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 429)).toHaveLength(90);

    for (const replica of [a, b]) {
      const list = await api(replica.url, 'GET', '/v1/vms?tenant_id=split-co', { token: a.adminToken });
      expect(list.body.items).toHaveLength(10);
    }

    const ledger = readLedgerJson<Entry>(a.dataDir);
    expect(ledger.map((e) => e.index)).toEqual(ledger.map((_, i) => i));
    const mine = ledger.filter((e) => e.tenant_id === 'split-co');
    expect(mine.filter((e) => e.event_type === 'VM_CREATED')).toHaveLength(10);
    expect(mine.filter((e) => e.event_type === 'VM_CREATE_DENIED')).toHaveLength(90);
    const deniedIndexes = new Set(mine.filter((e) => e.event_type === 'VM_CREATE_DENIED').map((e) => e.index));
    const cited = attempts.filter((r) => r.status === 429).map((r) => r.body.ledger_index as number);
    expect(new Set(cited)).toEqual(deniedIndexes);

    // The other replica's data directory reads the same ledger.
    expect(readLedgerJson<Entry>(b.dataDir)).toEqual(ledger);
  });

  it('10,000 concurrent creates across both replicas and 100 tenants with quotas: each tenant gets exactly its quota, every decision in a gapless ledger', async () => {
    const tenants = Array.from({ length: 100 }, (_, i) => ({ id: `many-${i}`, maxVms: 20 + ((i * 37) % 61) }));
    for (const t of tenants) {
      const res = await api(a.url, 'POST', '/v1/tenants', {
        token: a.adminToken,
        body: { tenant_id: t.id, display_name: t.id, max_vms: t.maxVms, storage_quota_gb: 1_000_000, api_rate_limit_rpm: 100_000 },
      });
      expect(res.status).toBe(201);
    }
    // 100 creates per tenant, interleaved over tenants and alternating replicas, 200 in flight at a
    // time (each replica allows 256 connections from one client address).
    const requests = Array.from({ length: 10_000 }, (_, i) => ({ tenant: tenants[i % 100]!, name: `vm-${Math.floor(i / 100)}`, replica: i % 2 === 0 ? a : b }));
    const statuses = new Map<string, number[]>();
    const unexpected: string[] = [];
    const cited: { tenantId: string; index: number }[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        while (next < requests.length) {
          const { tenant, name, replica } = requests[next++]!;
          const res = await api(replica.url, 'POST', `/v1/vms?tenant_id=${tenant.id}`, { token: a.adminToken, body: { name, disk_gb: 1 } });
          statuses.set(tenant.id, [...(statuses.get(tenant.id) ?? []), res.status]);
          const refused = res.status === 429 && res.body.type === QUOTA_EXCEEDED_TYPE;
          if (res.status !== 201 && !refused) unexpected.push(`${res.status} ${JSON.stringify(res.body)}`);
          if (refused) cited.push({ tenantId: tenant.id, index: res.body.ledger_index as number });
        }
      }),
    );
    expect(unexpected.slice(0, 5)).toEqual([]);

    // Read with psql: the ledger is too long for a test's pipe through service-fs read.
    const [entries, last] = dbShell(a.dataDir, 'select count(*), max(idx) from ledger_entries').trim().split('|').map(Number);
    expect(last).toBe(entries! - 1);
    // Every refusal cites its own VM_CREATE_DENIED entry of its tenant.
    const denials = new Map<number, string>();
    for (const line of dbShell(a.dataDir, "select idx, tenant_id from ledger_entries where event_type = 'VM_CREATE_DENIED'").split('\n')) {
      const [idx, tenantId] = line.split('|');
      if (tenantId) denials.set(Number(idx), tenantId);
    }
    expect(cited.filter((c) => denials.get(c.index) !== c.tenantId).slice(0, 5)).toEqual([]);
    expect(new Set(cited.map((c) => c.index)).size).toBe(cited.length);
    const logged = new Map<string, number>();
    for (const line of dbShell(
      a.dataDir,
      "select tenant_id, event_type, count(*) from ledger_entries where tenant_id like 'many-%' group by tenant_id, event_type",
    ).split('\n')) {
      const [tenantId, eventType, n] = line.split('|');
      if (tenantId) logged.set(`${tenantId} ${eventType}`, Number(n));
    }
    for (const t of tenants) {
      const got = statuses.get(t.id)!;
      expect({ tenant: t.id, created: got.filter((s) => s === 201).length, refused: got.filter((s) => s === 429).length }).toEqual({
        tenant: t.id,
        created: t.maxVms,
        refused: 100 - t.maxVms,
      });
      expect(logged.get(`${t.id} VM_CREATED`) ?? 0).toBe(t.maxVms);
      expect(logged.get(`${t.id} VM_CREATE_DENIED`) ?? 0).toBe(100 - t.maxVms);
    }
  }, 900_000);
});
