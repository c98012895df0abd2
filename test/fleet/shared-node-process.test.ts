/**
 * A shared node end to end against a real server process: the operator mints the node's token with
 * `service-vm-tenant admin-token --scope node:agent --subject PUB`, the node enrolls over real HTTP
 * with signed requests, and the server's own scheduler (a leader job) places a VM of a tenant with
 * `shared_pool` on it, which the node then sees in its heartbeat reply. The node plays the agent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { CLI, api, runCli, startServer, within, type ServerProcess } from '../support/server-process.js';

const CAPACITY = { cpus: 2, memory_mb_total: 4096, memory_mb_available: 3500, disk_gb_available: 40, kvm: false, load1: 0 };

describe('a shared node against a real server', () => {
  let server: ServerProcess;
  const node = generateKeyPair();
  let nodeToken: string;

  /** A request signed by the node key, as the agent sends it. */
  async function nodeApi(method: string, path: string, body: unknown) {
    const payload = JSON.stringify(body);
    const headers = {
      authorization: `Bearer ${nodeToken}`,
      'content-type': 'application/json',
      ...signRequest({ method, ...splitTarget(path), headers: {}, body: Buffer.from(payload) }, { privateKey: node.privateKey, clock: systemClock }),
    };
    const res = await fetch(`${server.url}${path}`, { method, headers, body: payload });
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('mints a shared node token, enrolls the node, and the scheduler places a shared_pool tenant’s VM on it', async () => {
    const minted = runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir, '--scope', 'node:agent', '--subject', encodeBase64url(rawPublicKey(node.publicKey))]);
    expect(minted.status, minted.stderr).toBe(0);
    nodeToken = minted.stdout.trim();

    const enrolled = await nodeApi('POST', '/v1/nodes', { node_id: 'shared-west', capacity: CAPACITY });
    expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(201);
    expect(enrolled.body).toMatchObject({ tenant_id: null, shared: true });

    const tenant = await api(server.url, 'POST', '/v1/tenants', { token: server.adminToken, body: { tenant_id: 'borrower', display_name: 'Borrower' } });
    expect(tenant.status).toBe(201);
    expect((await api(server.url, 'PATCH', '/v1/tenants/borrower', { token: server.adminToken, body: { shared_pool: true } })).status).toBe(200);
    const vm = await api(server.url, 'POST', '/v1/vms?tenant_id=borrower', { token: server.adminToken, body: { disk_gb: 1, memory_mb: 512 } });
    expect(vm.status).toBe(201);

    const placed = await within(
      5000,
      async () => (await api(server.url, 'GET', `/v1/vms/${vm.body.vm_id}`, { token: server.adminToken })).body.state === 'scheduled',
      100,
    );
    expect(placed, 'the scheduler placed the VM within 5 s').not.toBeNull();
    const beat = await nodeApi('POST', '/v1/nodes/shared-west/heartbeat', { capacity: CAPACITY, vms: [] });
    expect(beat.status).toBe(200);
    expect(beat.body.vms.map((v: { vm_id: string }) => v.vm_id)).toEqual([vm.body.vm_id]);
  });

  it('refuses --subject without --scope node:agent, and --scope node:agent without a valid --subject', () => {
    expect(runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir, '--subject', 'abc']).status).toBe(2);
    expect(runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir, '--scope', 'node:agent']).status).toBe(2);
    expect(runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir, '--scope', 'node:agent', '--subject', 'not-a-key']).status).toBe(2);
    expect(runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir, '--scope', 'tenant:read']).status).toBe(2);
  });
});
