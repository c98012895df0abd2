/**
 * Group commit under kill -9 (SPEC §8, docs/design/store.md): a real server process flooded with
 * concurrent creates, some of them name conflicts that roll back inside their batch, is killed while
 * batches are in flight, 40 times over on one data directory. After each kill, read with the store's
 * own client: every create answered 201 is stored, every VM row has its VM_CREATED entry and every
 * such entry its VM (no half of a batch), and the ledger has no gap.
 */
import { describe, expect, it } from 'vitest';
import { count, dbShell } from '../support/db-shell.js';
import { api, serversStoppedAfterEach, tempDataDir, type ServerProcess } from '../support/server-process.js';

const CYCLES = 40;
const FLOOD = 40;
/** Names repeat within a flood, so some creates fail with a conflict inside a batch. */
const NAMES = 30;

function rows(dataDir: string, query: string): string[] {
  return dbShell(dataDir, query)
    .split('\n')
    .filter((line) => line !== '');
}

describe('group commit across kill -9', () => {
  const start = serversStoppedAfterEach();

  it(`kill -9 in the middle of batches, ${CYCLES} times: no answered create is lost and no batch is half stored`, async () => {
    const dataDir = tempDataDir();
    const acked = new Set<string>();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const server: ServerProcess = await start(dataDir);
      if (cycle === 0) {
        const tenant = await api(server.url, 'POST', '/v1/tenants', {
          token: server.adminToken,
          body: { tenant_id: 'crash', display_name: 'crash', max_vms: 100_000, storage_quota_gb: 1_000_000, api_rate_limit_rpm: 100_000 },
        });
        expect(tenant.status).toBe(201);
      }
      // Kill after a different number of answers each cycle, while the rest are still in flight.
      const killAfter = 1 + ((cycle * 7) % 15);
      let answered = 0;
      let killed: Promise<void> | undefined;
      const attempts = Array.from({ length: FLOOD }, (_, i) =>
        api(server.url, 'POST', '/v1/vms?tenant_id=crash', { token: server.adminToken, body: { name: `c${cycle}-vm-${i % NAMES}` } }).then((res) => {
          if (res.status === 201) acked.add(res.body.vm_id as string);
          if (++answered === killAfter) killed = server.kill9();
          return res;
        }),
      );
      const settled = await Promise.allSettled(attempts);
      await (killed ?? server.kill9());
      // Every attempt got a 201, a 409 for a repeated name, or lost its connection: nothing else.
      for (const s of settled) if (s.status === 'fulfilled') expect([201, 409]).toContain(s.value.status);

      const stored = new Set(rows(dataDir, 'select vm_id from vms'));
      for (const vmId of acked) expect(stored.has(vmId), `acknowledged ${vmId} lost in cycle ${cycle}`).toBe(true);
      const vmsWithoutEntry = rows(
        dataDir,
        "select v.vm_id from vms v where not exists (select 1 from ledger_entries e where e.event_type = 'VM_CREATED' and e.vm_id = v.vm_id)",
      );
      const entriesWithoutVm = rows(
        dataDir,
        "select e.idx from ledger_entries e where e.event_type = 'VM_CREATED' and not exists (select 1 from vms v where v.vm_id = e.vm_id)",
      );
      expect({ cycle, vmsWithoutEntry, entriesWithoutVm }).toEqual({ cycle, vmsWithoutEntry: [], entriesWithoutVm: [] });
      const entries = count(dataDir, 'ledger_entries');
      expect(rows(dataDir, 'select max(idx) from ledger_entries')).toEqual([String(entries - 1)]);
      // Within one flood a name is stored at most once.
      expect(rows(dataDir, `select name from vms where name like 'c${cycle}-%' group by name having count(*) > 1`)).toEqual([]);
    }
    expect(acked.size).toBeGreaterThanOrEqual(CYCLES);
  }, 600_000);
});
