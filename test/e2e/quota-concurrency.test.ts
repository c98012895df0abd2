/**
 * Quotas under concurrency (SPEC §6, §8) against a real server process on a real port: many creates
 * in flight at once never take a tenant past its quota, every decision is in the ledger (one
 * VM_CREATED or VM_CREATE_DENIED per request, the denial's index in the 429 body), and the ledger's
 * indexes stay gapless. The ledger is read back with the real service-fs command.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { api, readLedgerJson, startServer, type ServerProcess } from '../support/server-process.js';

const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

interface Entry {
  index: number;
  ts: string;
  event_type: string;
  tenant_id: string | null;
  actor: { token_id: string | null };
  subject_ids: { vm_id?: string };
  data: Record<string, any>;
}

interface Attempt {
  name: string;
  disk_gb: number;
  status: number;
  body: any;
}

describe('quotas under concurrent creates', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  function readLedger(...args: string[]): Entry[] {
    return readLedgerJson<Entry>(server.dataDir, ...args);
  }

  async function createTenantWithToken(tenantId: string, limits: Record<string, number>, tokenLimits?: Record<string, number>): Promise<string> {
    const tenant = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: tenantId, display_name: tenantId, api_rate_limit_rpm: 100_000, ...limits },
    });
    expect(tenant.status).toBe(201);
    const holder = generateKeyPair();
    const issued = await api(server.url, 'POST', `/v1/tenants/${tenantId}/tokens`, {
      token: server.adminToken,
      body: {
        subject_pubkey: encodeBase64url(rawPublicKey(holder.publicKey)),
        scope: 'tenant:input',
        expires_in_seconds: 3600,
        ...(tokenLimits ? { limits: tokenLimits } : {}),
      },
    });
    expect(issued.status).toBe(201);
    return issued.body.token as string;
  }

  /** Fires every create at once over real sockets and waits for all answers. */
  function createAll(token: string, requests: { name: string; disk_gb: number }[]): Promise<Attempt[]> {
    return Promise.all(
      requests.map(async (req) => {
        const res = await api(server.url, 'POST', '/v1/vms', { token, body: req });
        return { ...req, status: res.status, body: res.body };
      }),
    );
  }

  /** Each 429 names its own VM_CREATE_DENIED entry, and each 201 has its VM_CREATED entry. */
  function expectEveryDecisionInLedger(tenantId: string, attempts: Attempt[]): void {
    const denied = readLedger('--filter', `tenant-id=${tenantId}`, '--event-type', 'VM_CREATE_DENIED');
    const created = readLedger('--filter', `tenant-id=${tenantId}`, '--event-type', 'VM_CREATED');
    const deniedByIndex = new Map(denied.map((e) => [e.index, e]));
    const refusals = attempts.filter((a) => a.status === 429);
    expect(new Set(refusals.map((a) => a.body.ledger_index)).size).toBe(refusals.length);
    for (const attempt of refusals) {
      const entry = deniedByIndex.get(attempt.body.ledger_index);
      expect(entry, `ledger_index ${attempt.body.ledger_index} of ${attempt.name}`).toBeDefined();
      expect(entry!.data.name).toBe(attempt.name);
      expect(entry!.data.quota).toEqual(attempt.body.quota);
      expect(entry!.data.violated_policies).toEqual(attempt.body['violated-policies']);
    }
    const createdByVm = new Map(created.map((e) => [e.subject_ids.vm_id, e]));
    const successes = attempts.filter((a) => a.status === 201);
    expect(createdByVm.size).toBe(successes.length);
    for (const attempt of successes) expect(createdByVm.get(attempt.body.vm_id)?.data.name).toBe(attempt.name);
  }

  async function listVmNames(token: string): Promise<string[]> {
    const res = await api(server.url, 'GET', '/v1/vms', { token });
    expect(res.status).toBe(200);
    expect(res.body.next_cursor).toBeNull();
    return res.body.items.map((vm: { name: string }) => vm.name).sort();
  }

  it('50 parallel creates against max_vms=10: exactly 10 created, 40 refused with 429 and a ledger entry each', async () => {
    const token = await createTenantWithToken('vm-flood', { max_vms: 10, storage_quota_gb: 100_000 });
    const attempts = await createAll(
      token,
      Array.from({ length: 50 }, (_, i) => ({ name: `vm-${i}`, disk_gb: 10 })),
    );

    const created = attempts.filter((a) => a.status === 201);
    const refused = attempts.filter((a) => a.status === 429);
    expect(created).toHaveLength(10);
    expect(refused).toHaveLength(40);
    for (const attempt of refused) {
      expect(attempt.body).toMatchObject({
        type: QUOTA_EXCEEDED,
        title: 'Quota exceeded',
        status: 429,
        instance: '/v1/vms',
        'violated-policies': ['max_vms'],
        quota: { resource: 'vms', limit: 10, used: 10, requested: 1 },
      });
      expect(Number.isInteger(attempt.body.ledger_index)).toBe(true);
    }

    expect(readLedger('--filter', 'tenant-id=vm-flood', '--event-type', 'VM_CREATE_DENIED')).toHaveLength(40);
    expect(readLedger('--filter', 'tenant-id=vm-flood', '--event-type', 'VM_CREATED')).toHaveLength(10);
    expectEveryDecisionInLedger('vm-flood', attempts);

    expect(await listVmNames(token)).toEqual(created.map((a) => a.name).sort());
    const tenant = await api(server.url, 'GET', '/v1/tenants/vm-flood', { token: server.adminToken });
    expect(tenant.body.usage).toMatchObject({ vms: 10, storage_gb: 100 });
  });

  it('50 parallel creates of 10 GB against storage_quota_gb=100: exactly 10 created', async () => {
    const token = await createTenantWithToken('disk-flood', { max_vms: 1000, storage_quota_gb: 100 });
    const attempts = await createAll(
      token,
      Array.from({ length: 50 }, (_, i) => ({ name: `disk-${i}`, disk_gb: 10 })),
    );

    const created = attempts.filter((a) => a.status === 201);
    const refused = attempts.filter((a) => a.status === 429);
    expect(created).toHaveLength(10);
    expect(refused).toHaveLength(40);
    for (const attempt of refused) {
      expect(attempt.body).toMatchObject({
        type: QUOTA_EXCEEDED,
        status: 429,
        'violated-policies': ['storage_quota_gb'],
        quota: { resource: 'storage_gb', limit: 100, used: 100, requested: 10 },
      });
    }
    expect(readLedger('--filter', 'tenant-id=disk-flood', '--event-type', 'VM_CREATE_DENIED')).toHaveLength(40);
    expect(readLedger('--filter', 'tenant-id=disk-flood', '--event-type', 'VM_CREATED')).toHaveLength(10);
    expectEveryDecisionInLedger('disk-flood', attempts);
    expect(await listVmNames(token)).toEqual(created.map((a) => a.name).sort());
  });

  it('mixed sizes in parallel: replaying the ledger in index order justifies every decision', async () => {
    const token = await createTenantWithToken('mixed-flood', { max_vms: 1000, storage_quota_gb: 100 });
    // A fixed spread of sizes, so the outcome depends on arrival order but the invariants do not.
    const sizes = Array.from({ length: 50 }, (_, i) => 1 + ((i * 37) % 29));
    const attempts = await createAll(
      token,
      sizes.map((disk_gb, i) => ({ name: `mixed-${i}`, disk_gb })),
    );
    expect(attempts.every((a) => a.status === 201 || a.status === 429)).toBe(true);
    expect(attempts.some((a) => a.status === 429)).toBe(true);
    expectEveryDecisionInLedger('mixed-flood', attempts);

    // Decisions were taken one at a time in ledger order: each saw the usage of all earlier creates.
    let used = 0;
    const decisions = readLedger('--filter', 'tenant-id=mixed-flood').filter((e) => e.event_type.startsWith('VM_CREATE'));
    expect(decisions).toHaveLength(50);
    for (const entry of decisions) {
      if (entry.event_type === 'VM_CREATED') {
        used += entry.data.disk_gb as number;
        expect(used).toBeLessThanOrEqual(100);
      } else {
        expect(entry.data.quota).toMatchObject({ resource: 'storage_gb', limit: 100, used });
        expect(used + entry.data.quota.requested).toBeGreaterThan(100);
      }
    }
    const tenant = await api(server.url, 'GET', '/v1/tenants/mixed-flood', { token: server.adminToken });
    expect(tenant.body.usage.storage_gb).toBe(used);
    expect(tenant.body.usage.vms).toBe(attempts.filter((a) => a.status === 201).length);
  });

  it("two tenants flooding at once each stop at their own quota, not at each other's", async () => {
    const north = await createTenantWithToken('north', { max_vms: 10, storage_quota_gb: 100_000 });
    const south = await createTenantWithToken('south', { max_vms: 10, storage_quota_gb: 100_000 });
    const [northAttempts, southAttempts] = await Promise.all([
      createAll(
        north,
        Array.from({ length: 25 }, (_, i) => ({ name: `n-${i}`, disk_gb: 1 })),
      ),
      createAll(
        south,
        Array.from({ length: 25 }, (_, i) => ({ name: `s-${i}`, disk_gb: 1 })),
      ),
    ]);
    for (const [tenantId, token, attempts] of [
      ['north', north, northAttempts],
      ['south', south, southAttempts],
    ] as const) {
      expect(attempts.filter((a) => a.status === 201)).toHaveLength(10);
      expect(attempts.filter((a) => a.status === 429)).toHaveLength(15);
      expectEveryDecisionInLedger(tenantId, attempts);
      const names = await listVmNames(token);
      expect(names).toHaveLength(10);
      expect(names.every((n) => n.startsWith(tenantId[0]!))).toBe(true);
    }
  });

  it('30 parallel creates under a token with max_vms=2 while the tenant has room: exactly 2 created, 28 refused naming token:max_vms and the block', async () => {
    const token = await createTenantWithToken('token-flood', { max_vms: 100, storage_quota_gb: 100_000 }, { max_vms: 2 });
    const whoami = await api(server.url, 'GET', '/v1/whoami', { token });
    const blockId = whoami.body.token_id as string;
    const attempts = await createAll(
      token,
      Array.from({ length: 30 }, (_, i) => ({ name: `tok-${i}`, disk_gb: 1 })),
    );

    expect(attempts.filter((a) => a.status === 201)).toHaveLength(2);
    const refused = attempts.filter((a) => a.status === 429);
    expect(refused).toHaveLength(28);
    for (const attempt of refused) {
      expect(attempt.body).toMatchObject({
        type: QUOTA_EXCEEDED,
        status: 429,
        'violated-policies': ['token:max_vms'],
        quota: { resource: 'vms', limit: 2, used: 2, requested: 1 },
        block_id: blockId,
      });
    }
    expectEveryDecisionInLedger('token-flood', attempts);
    const denied = readLedger('--filter', 'tenant-id=token-flood', '--event-type', 'VM_CREATE_DENIED');
    expect(denied).toHaveLength(28);
    expect(denied.every((e) => e.data.block_id === blockId)).toBe(true);

    const after = await api(server.url, 'GET', '/v1/whoami', { token });
    expect(after.body.chain[0]).toMatchObject({ limits: { max_vms: 2 }, usage: { vms: 2, storage_gb: 2 } });
    const tenant = await api(server.url, 'GET', '/v1/tenants/token-flood', { token: server.adminToken });
    expect(tenant.body.usage.vms).toBe(2);
  });

  it('keeps the ledger indexes 0..n-1 with no gap and no duplicate after all of that', () => {
    const all = readLedger();
    expect(all.length).toBeGreaterThan(200);
    expect(all.map((e) => e.index)).toEqual(all.map((_, i) => i));
    // Times never go backwards along the index order.
    for (let i = 1; i < all.length; i++) expect(all[i]!.ts >= all[i - 1]!.ts).toBe(true);
  });
});
