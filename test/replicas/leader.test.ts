/**
 * Background work runs on exactly one replica, chosen by a PostgreSQL advisory lock; when the leader
 * is killed with SIGKILL another replica takes over within 5 s, and nothing acknowledged is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, replicaDataDir, startServer, within, type ServerProcess } from '../support/server-process.js';

async function role(server: ServerProcess): Promise<string> {
  return (await api(server.url, 'GET', '/readyz')).body.background;
}

/** Completed runs of the rate-log sweep, from the server's /metrics. */
async function sweeps(server: ServerProcess): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = /^ppn_background_runs_total\{job="rate-events-sweep"\} (\d+)$/m.exec(text);
  return line ? Number(line[1]) : 0;
}

describe('background work and leader failover', () => {
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    a = await startServer();
    expect(await within(5000, async () => (await role(a)) === 'leader')).not.toBeNull();
    b = await startServer(replicaDataDir(a.dataDir));
  });
  afterAll(async () => {
    for (const server of [a, b]) if (server.process.exitCode === null && server.process.signalCode === null) await server.stop();
  });

  it('runs on the leader only, and moves to the other replica within 5 s of a kill -9', async () => {
    // B starts while A holds the lock: it stays on standby and runs nothing.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(await role(b)).toBe('standby');
    expect(await sweeps(b)).toBe(0);
    expect(await sweeps(a)).toBeGreaterThan(0);

    // Work acknowledged by the leader before it dies.
    const tenant = await api(a.url, 'POST', '/v1/tenants', {
      token: a.adminToken,
      body: { tenant_id: 'failover-co', display_name: 'Failover', max_vms: 10 },
    });
    expect(tenant.status).toBe(201);
    const vm = await api(a.url, 'POST', '/v1/vms?tenant_id=failover-co', { token: a.adminToken, body: { name: 'keep-me' } });
    expect(vm.status).toBe(201);

    await a.kill9();
    const took = await within(5000, async () => (await role(b)) === 'leader');
    expect(took, 'the standby did not take over within 5 s').not.toBeNull();
    expect(await within(5000, async () => (await sweeps(b)) > 0)).not.toBeNull();

    const seen = await api(b.url, 'GET', `/v1/vms/${vm.body.vm_id}?tenant_id=failover-co`, { token: a.adminToken });
    expect(seen.status).toBe(200);
    expect(seen.body.name).toBe('keep-me');
  });
});
