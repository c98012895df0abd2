/**
 * Crash durability (SPEC §8, store/sqlite): whatever the server acknowledged survives `kill -9`, with
 * its ledger entry, and a restart on the same data directory keeps the operator's admin token. Real
 * processes on a real port over a real SQLite file; the ledger is read with the real service-fs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { api, readLedgerJson, serversStoppedAfterEach, tempDataDir, type ServerProcess } from '../support/server-process.js';

interface Entry {
  index: number;
  event_type: string;
  tenant_id: string | null;
  subject_ids: { vm_id?: string };
  data: Record<string, unknown>;
}

function readLedger(dataDir: string, ...args: string[]): Entry[] {
  return readLedgerJson<Entry>(dataDir, ...args);
}

describe('durability across kill -9 and restart', () => {
  const start = serversStoppedAfterEach();

  async function createTenant(server: ServerProcess, tenantId: string, maxVms = 10): Promise<void> {
    const res = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: tenantId, display_name: tenantId, max_vms: maxVms, storage_quota_gb: 100_000, api_rate_limit_rpm: 100_000 },
    });
    expect(res.status).toBe(201);
  }

  it('a VM acknowledged with 201 is there, with its VM_CREATED entry, after kill -9 and a restart', async () => {
    const first = await start();
    await createTenant(first, 'acme');
    const created = await api(first.url, 'POST', '/v1/vms?tenant_id=acme', { token: first.adminToken, body: { name: 'web-1', disk_gb: 20 } });
    expect(created.status).toBe(201);
    await first.kill9();
    expect(first.process.signalCode).toBe('SIGKILL');

    const second = await start(first.dataDir);
    const vm = await api(second.url, 'GET', `/v1/vms/${created.body.vm_id}`, { token: first.adminToken });
    expect(vm.status).toBe(200);
    // The scheduler of either server may have noted why the VM still waits (reason, updated_at): the
    // record is the one acknowledged, whatever the scheduler said about it since.
    expect(vm.body).toEqual({ ...created.body, reason: expect.any(String), updated_at: expect.any(String) });
    expect(vm.body.state).toBe('pending');

    const entries = readLedger(second.dataDir, '--filter', `vm-id=${created.body.vm_id}`, '--event-type', 'VM_CREATED');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ event_type: 'VM_CREATED', tenant_id: 'acme', subject_ids: { vm_id: created.body.vm_id }, data: { name: 'web-1', disk_gb: 20 } });
  });

  it('a restart does not overwrite admin.token: the old admin token keeps working and no new one is minted', async () => {
    const dataDir = tempDataDir();
    const first = await start(dataDir);
    const tokenFile = readFileSync(join(dataDir, 'admin.token'), 'utf8');
    expect(first.output()).toMatch(/wrote a platform-admin token/);
    await createTenant(first, 'acme');
    const issuedBefore = readLedger(dataDir, '--event-type', 'TOKEN_ISSUED');
    expect(issuedBefore).toHaveLength(1);
    await first.kill9();

    const second = await start(dataDir);
    expect(readFileSync(join(dataDir, 'admin.token'), 'utf8')).toBe(tokenFile);
    expect(second.adminToken).toBe(first.adminToken);
    expect(second.output()).not.toMatch(/wrote a platform-admin token/);
    expect(readLedger(dataDir, '--event-type', 'TOKEN_ISSUED')).toEqual(issuedBefore);

    const tenants = await api(second.url, 'GET', '/v1/tenants', { token: first.adminToken });
    expect(tenants.status).toBe(200);
    expect(tenants.body.items.map((t: { tenant_id: string }) => t.tenant_id)).toEqual(['acme']);
    const whoami = await api(second.url, 'GET', '/v1/whoami', { token: first.adminToken });
    expect(whoami.body).toMatchObject({ tenant_id: null, scope: ['service:platform-admin'] });

    // A graceful stop and a third start change nothing either.
    expect(await second.stop()).toBe(0);
    const third = await start(dataDir);
    expect(readFileSync(join(dataDir, 'admin.token'), 'utf8')).toBe(tokenFile);
    expect((await api(third.url, 'GET', '/v1/tenants', { token: first.adminToken })).status).toBe(200);
  });

  it('kill -9 in the middle of a flood: every acknowledged VM survives, and VMs and VM_CREATED entries match one to one', async () => {
    const first = await start();
    await createTenant(first, 'flood', 1000);
    let acknowledged = 0;
    let killed: Promise<void> | undefined;
    const attempts = Array.from({ length: 60 }, (_, i) =>
      api(first.url, 'POST', '/v1/vms?tenant_id=flood', { token: first.adminToken, body: { name: `vm-${i}` } }).then((res) => {
        // Kill as soon as a few creates are acknowledged, while the rest are still in flight.
        if (res.status === 201 && ++acknowledged === 5) killed = first.kill9();
        return res;
      }),
    );
    const settled = await Promise.allSettled(attempts);
    await (killed ?? first.kill9());
    const acked = settled.flatMap((s) => (s.status === 'fulfilled' && s.value.status === 201 ? [s.value.body.vm_id as string] : []));
    expect(acked.length).toBeGreaterThanOrEqual(5);
    // Every attempt either got a 201 or lost its connection to the killed server: nothing else.
    for (const s of settled) if (s.status === 'fulfilled') expect(s.value.status).toBe(201);

    const second = await start(first.dataDir);
    const listed = await api(second.url, 'GET', '/v1/vms?tenant_id=flood&limit=1000', { token: first.adminToken });
    expect(listed.status).toBe(200);
    const stored: string[] = listed.body.items.map((vm: { vm_id: string }) => vm.vm_id).sort();
    for (const vmId of acked) expect(stored).toContain(vmId);

    const ledger = readLedger(second.dataDir);
    expect(ledger.map((e) => e.index)).toEqual(ledger.map((_, i) => i));
    const logged = ledger
      .filter((e) => e.event_type === 'VM_CREATED')
      .map((e) => e.subject_ids.vm_id!)
      .sort();
    expect(logged).toEqual(stored);

    // The restarted server appends after the last surviving entry.
    const next = await api(second.url, 'POST', '/v1/vms?tenant_id=flood', { token: first.adminToken, body: { name: 'after-restart' } });
    expect(next.status).toBe(201);
    const [entry] = readLedger(second.dataDir, '--filter', `vm-id=${next.body.vm_id}`);
    expect(entry!.index).toBe(ledger.length);
  });
});
