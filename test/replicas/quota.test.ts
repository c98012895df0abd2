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
});
