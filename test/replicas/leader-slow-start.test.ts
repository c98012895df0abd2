/**
 * Two replicas (real server processes on one PostgreSQL database) started 20 times behind a TCP
 * proxy that holds new connections until none has arrived for 700 ms (at most 2.1 s) and then lets
 * them through together, as a database that is slow to reach at start-up does: every time exactly
 * one replica leads, and it signs a checkpoint covering a new entry within 2 s.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DelayingProxy } from '../support/delaying-proxy.js';
import { api, replicaDataDir, startServer, within, type ServerProcess } from '../support/server-process.js';
import { dropDatabase } from '../support/stores.js';

const ROUNDS = 20;
const HOLD_MS = 700; // longer than the election's 500 ms retry interval

async function roles(servers: ServerProcess[]): Promise<string[]> {
  return Promise.all(servers.map(async (server) => (await api(server.url, 'GET', '/readyz')).body.background as string));
}

/** The size of the latest signed checkpoint, 0 before the first. */
async function checkpointSize(server: ServerProcess): Promise<number> {
  const res = await fetch(`${server.url}/v1/ledger/checkpoint`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  if (res.status === 404) return 0;
  return Number((await res.text()).split('\n')[1]);
}

describe('two replicas with a slow first database connection', () => {
  let proxy: DelayingProxy;
  let databaseUrl: string;
  let dataDirs: string[];

  beforeAll(async () => {
    // One start creates the data directory, its keys and the database; the replicas reuse them.
    const first = await startServer();
    await first.stop();
    databaseUrl = readFileSync(join(first.dataDir, 'database.url'), 'utf8').trim();
    dataDirs = [first.dataDir, replicaDataDir(first.dataDir)];
    proxy = await DelayingProxy.start(databaseUrl);
  });
  afterAll(async () => {
    await proxy.close();
    await dropDatabase(databaseUrl);
  });

  it(`always elects exactly one leader, which signs a checkpoint within 2 s of a new entry (${ROUNDS} starts)`, { timeout: ROUNDS * 30_000 }, async () => {
    const env = { PPN_DATABASE_URL: proxy.urlFor(databaseUrl) };
    for (let round = 1; round <= ROUNDS; round++) {
      proxy.holdNewConnections(HOLD_MS);
      const servers = await Promise.all(dataDirs.map((dir) => startServer(dir, env)));
      try {
        const led = await within(10_000, async () => (await roles(servers)).includes('leader'));
        expect(led, `round ${round}: no replica became leader`).not.toBeNull();
        proxy.holdNewConnections(0);
        expect((await roles(servers)).sort(), `round ${round}`).toEqual(['leader', 'standby']);

        const tenantId = `slow-start-${round}`;
        const created = await api(servers[0]!.url, 'POST', '/v1/tenants', {
          token: servers[0]!.adminToken,
          body: { tenant_id: tenantId, display_name: `Round ${round}`, max_vms: 1 },
        });
        expect(created.status, `round ${round}`).toBe(201);
        const entries = await api(servers[1]!.url, 'GET', `/v1/ledger/entries?tenant_id=${tenantId}`, { token: servers[1]!.adminToken });
        const index = Math.max(...(entries.body.items as { index: number }[]).map((e) => e.index));
        const signed = await within(2000, async () => (await checkpointSize(servers[1]!)) > index);
        expect(signed, `round ${round}: no checkpoint covered entry ${index} within 2 s`).not.toBeNull();
        expect((await roles(servers)).sort(), `round ${round}`).toEqual(['leader', 'standby']);
      } finally {
        await Promise.all(servers.map((server) => server.stop()));
      }
    }
  });
});
