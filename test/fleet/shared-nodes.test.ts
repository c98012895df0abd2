/**
 * Shared fleet nodes (SPEC §7, docs/design/fleet.md): the platform operator mints a tenantless
 * node:agent token for a node key on the server's machine (`service-vm-tenant admin-token --scope
 * node:agent --subject PUB`); the node enrolls into the shared pool; the scheduler uses it only for
 * tenants whose `shared_pool` is on, and only when none of their own nodes fits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintSharedNodeToken } from '../../src/control/admin-token.js';
import { scheduleOnce } from '../../src/control/scheduler.js';
import { makeIdSource } from '../../src/clock.js';
import { generateKeyPair, type KeyPair } from '../../src/tokens/keys.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { expectProblem } from '../api/expectations.js';

const CAPACITY = { cpus: 8, memory_mb_total: 16_384, memory_mb_available: 12_000, disk_gb_available: 200, kvm: true, load1: 0 };
const SHARING = 'sharing';
const PRIVATE = 'private';

describe('shared fleet nodes', () => {
  let h: Harness;
  let node: { token: string; keys: KeyPair };

  const schedule = () => scheduleOnce({ store: h.store, clock: h.clock, ids: makeIdSource(h.clock) }, { cpuOvercommit: 4 });
  const signed = () => ({ token: node.token, signWith: node.keys.privateKey });

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(SHARING);
    await h.createTenant(PRIVATE);
    const keys = generateKeyPair();
    const minted = await mintSharedNodeToken({ store: h.store, clock: h.clock, ids: makeIdSource(h.clock) }, h.keyring, publicKeyText(keys), 3600);
    node = { token: minted.token, keys };
  });
  afterAll(async () => {
    await h.close();
  });

  it('enrolls into the shared pool with a platform-minted node token', async () => {
    const res = await h.request('POST', '/v1/nodes', { ...signed(), body: { node_id: 'shared-1', capacity: CAPACITY } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ node_id: 'shared-1', tenant_id: null, shared: true, state: 'ready' });
    const listed = await h.request('GET', '/v1/nodes', { token: h.adminToken });
    expect(listed.json<{ items: unknown[] }>().items).toEqual([expect.objectContaining({ node_id: 'shared-1', shared: true })]);
    // A tenant does not see the shared pool's nodes.
    const tenantAdmin = (await h.issueToken(SHARING, 'service:tenant-admin')).token;
    expect((await h.request('GET', '/v1/nodes', { token: tenantAdmin })).json<{ items: unknown[] }>().items).toEqual([]);
    expectProblem(await h.request('GET', '/v1/nodes/shared-1', { token: tenantAdmin }), 404);
  });

  it('serves only tenants whose shared_pool is on', async () => {
    const sharing = (await h.issueToken(SHARING, 'tenant:input')).token;
    const isolated = (await h.issueToken(PRIVATE, 'tenant:input')).token;
    const patched = await h.request('PATCH', `/v1/tenants/${SHARING}`, { token: h.adminToken, body: { shared_pool: true } });
    expect(patched.json()).toMatchObject({ shared_pool: true });
    const onShared = (await h.request('POST', '/v1/vms', { token: sharing, body: { disk_gb: 1 } })).json<{ vm_id: string }>().vm_id;
    const offShared = (await h.request('POST', '/v1/vms', { token: isolated, body: { disk_gb: 1 } })).json<{ vm_id: string }>().vm_id;
    await schedule();
    expect((await h.request('GET', `/v1/vms/${onShared}`, { token: sharing })).json()).toMatchObject({ state: 'scheduled', node_id: 'shared-1' });
    expect((await h.request('GET', `/v1/vms/${offShared}`, { token: isolated })).json()).toMatchObject({ state: 'pending', node_id: null });
    // Asking for the shared node by id works only with shared_pool on.
    expectProblem(await h.request('POST', '/v1/vms', { token: isolated, body: { disk_gb: 1, node_id: 'shared-1' } }), 404);
    expect((await h.request('POST', '/v1/vms', { token: sharing, body: { disk_gb: 1, node_id: 'shared-1' } })).statusCode).toBe(201);

    const beat = await h.request('POST', '/v1/nodes/shared-1/heartbeat', { ...signed(), body: { capacity: CAPACITY, vms: [] } });
    expect(beat.statusCode, beat.body).toBe(200);
    expect(beat.json<{ vms: { vm_id: string }[] }>().vms.map((v) => v.vm_id)).toEqual([onShared]);
  });

  it('is refused on every other route, like any node token', async () => {
    expectProblem(await h.request('GET', '/v1/tenants', signed()), 403);
    expectProblem(await h.request('GET', '/v1/vms', signed()), 403);
    expectProblem(await h.request('GET', '/v1/whoami', signed()), 403);
    // Even the public route that reads a token when one is sent.
    expectProblem(await h.request('GET', '/metrics', signed()), 403);
  });

  it('is removed by a platform admin, who addresses the shared pool without ?tenant_id=', async () => {
    const res = await h.request('DELETE', '/v1/nodes/shared-1', { token: h.adminToken });
    expect(res.statusCode, res.body).toBe(204);
    const removed = await h.ledgerLines({ limit: 10, eventType: 'NODE_REMOVED' } as never);
    expect(removed).toEqual([expect.objectContaining({ tenant_id: null, subject_ids: { node_id: 'shared-1' } })]);
  });
});
