/**
 * Bad input on the fleet routes gets a clear problem+json answer and changes nothing (SPEC §3, §9),
 * in the manner of test/api/bad-input.test.ts: each row is one otherwise valid request with one
 * thing wrong, sent signed by a real node key where the route is a node's, and asserts the status,
 * the field a 400 names, and that nothing changed (tenants, tokens, VMs, nodes, consoles, ledger).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scheduleOnce } from '../../src/control/scheduler.js';
import type { KeyPair } from '../../src/tokens/keys.js';
import { startHarness, type Harness } from '../support/harness.js';
import { expectProblem, snapshotState } from '../api/expectations.js';

const A = 'fleet-bad';
const NODE = 'node-1';
const CAPACITY = { cpus: 4, memory_mb_total: 8192, memory_mb_available: 6000, disk_gb_available: 100, kvm: true, load1: 0.25 };
const ENROLL = { node_id: 'node-2', capacity: CAPACITY };

type Caller = 'agent' | 'tenant-admin' | 'admin';

interface BadRequest {
  name: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  as: Caller;
  body?: unknown;
  payload?: string;
  status: number;
  field?: string;
}

const capacityWith = (change: Record<string, unknown>) => ({ ...CAPACITY, ...change });
const enroll = (name: string, body: unknown, field: string): BadRequest => ({
  name: `enroll: ${name}`,
  method: 'POST',
  url: '/v1/nodes',
  as: 'agent',
  body,
  status: 400,
  field,
});
const beat = (name: string, body: unknown, field: string, status = 400): BadRequest => ({
  name: `heartbeat: ${name}`,
  method: 'POST',
  url: `/v1/nodes/${NODE}/heartbeat`,
  as: 'agent',
  body,
  status,
  field,
});
/** {vm} is the VM placed on NODE. */
const upload = (name: string, body: unknown, field: string | undefined, status = 400): BadRequest => ({
  name: `console upload: ${name}`,
  method: 'PUT',
  url: `/v1/nodes/${NODE}/vms/{vm}/console`,
  as: 'agent',
  body,
  status,
  ...(field !== undefined ? { field } : {}),
});

const CASES: BadRequest[] = [
  enroll('node_id uppercase', { ...ENROLL, node_id: 'Node-2' }, 'node_id'),
  enroll('node_id 64 characters', { ...ENROLL, node_id: 'n'.repeat(64) }, 'node_id'),
  enroll('node_id a path', { ...ENROLL, node_id: '../etc' }, 'node_id'),
  enroll('node_id a number', { ...ENROLL, node_id: 7 }, 'node_id'),
  enroll('node_id missing', { capacity: CAPACITY }, 'node_id'),
  enroll('capacity missing', { node_id: 'node-2' }, 'capacity'),
  enroll('capacity.cpus zero', { ...ENROLL, capacity: capacityWith({ cpus: 0 }) }, 'capacity.cpus'),
  enroll('capacity.cpus fractional', { ...ENROLL, capacity: capacityWith({ cpus: 1.5 }) }, 'capacity.cpus'),
  enroll('capacity.cpus text', { ...ENROLL, capacity: capacityWith({ cpus: '4' }) }, 'capacity.cpus'),
  enroll('capacity.memory_mb_total zero', { ...ENROLL, capacity: capacityWith({ memory_mb_total: 0 }) }, 'capacity.memory_mb_total'),
  enroll('capacity.memory_mb_available negative', { ...ENROLL, capacity: capacityWith({ memory_mb_available: -1 }) }, 'capacity.memory_mb_available'),
  enroll('capacity.disk_gb_available negative', { ...ENROLL, capacity: capacityWith({ disk_gb_available: -1 }) }, 'capacity.disk_gb_available'),
  enroll('capacity.kvm text', { ...ENROLL, capacity: capacityWith({ kvm: 'yes' }) }, 'capacity.kvm'),
  enroll('capacity.load1 negative', { ...ENROLL, capacity: capacityWith({ load1: -1 }) }, 'capacity.load1'),
  enroll('capacity unknown field', { ...ENROLL, capacity: capacityWith({ gpus: 1 }) }, 'capacity.gpus'),
  enroll('unknown field', { ...ENROLL, tenant_id: 'other' }, 'tenant_id'),
  beat('vms missing', { capacity: CAPACITY }, 'vms'),
  beat('vms not a list', { capacity: CAPACITY, vms: {} }, 'vms'),
  beat('vm_id not an id', { capacity: CAPACITY, vms: [{ vm_id: 'web-1', state: 'running' }] }, 'vms.0.vm_id'),
  beat('state unknown', { capacity: CAPACITY, vms: [{ vm_id: '{vm}', state: 'exploded' }] }, 'vms.0.state'),
  beat('reason over 1 KiB', { capacity: CAPACITY, vms: [{ vm_id: '{vm}', state: 'failed', reason: 'x'.repeat(1025) }] }, 'vms.0.reason'),
  beat('vm unknown field', { capacity: CAPACITY, vms: [{ vm_id: '{vm}', state: 'running', node_id: NODE }] }, 'vms.0.node_id'),
  beat(
    'a VM reported twice',
    {
      capacity: CAPACITY,
      vms: [
        { vm_id: '{vm}', state: 'running' },
        { vm_id: '{vm}', state: 'stopped' },
      ],
    },
    'vms',
  ),
  beat('capacity.cpus missing', { capacity: { ...CAPACITY, cpus: undefined }, vms: [] }, 'capacity.cpus'),
  {
    name: 'heartbeat: node id uppercase in the path',
    method: 'POST',
    url: '/v1/nodes/NODE-1/heartbeat',
    as: 'agent',
    body: { capacity: CAPACITY, vms: [] },
    status: 400,
    field: 'node_id',
  },
  upload('data not base64', { data: 'not base64!' }, 'data'),
  upload('data over 64 KiB', { data: Buffer.alloc(64 * 1024 + 3).toString('base64') }, 'data'),
  upload('data missing', {}, 'data'),
  upload('a body over 128 KiB', { data: 'A'.repeat(130 * 1024) }, undefined, 413),
  { name: 'node list: limit 0', method: 'GET', url: '/v1/nodes?limit=0', as: 'tenant-admin', status: 400, field: 'limit' },
  { name: 'node list: a cursor not from the server', method: 'GET', url: '/v1/nodes?cursor=abc', as: 'tenant-admin', status: 400, field: 'cursor' },
  { name: 'node list: unknown parameter', method: 'GET', url: '/v1/nodes?state=ready', as: 'tenant-admin', status: 400, field: 'state' },
  { name: 'node: id with a dot', method: 'GET', url: '/v1/nodes/node.1', as: 'tenant-admin', status: 400, field: 'node_id' },
  { name: 'node removal: tenant_id invalid', method: 'DELETE', url: `/v1/nodes/${NODE}?tenant_id=A`, as: 'admin', status: 400, field: 'tenant_id' },
  { name: 'VM console: not an id', method: 'GET', url: '/v1/vms/web-1/console', as: 'tenant-admin', status: 400, field: 'vm_id' },
  { name: 'new VM: node_id not a DNS label', method: 'POST', url: '/v1/vms', as: 'tenant-admin', body: { disk_gb: 1, node_id: 'Node_1' }, status: 400, field: 'node_id' },
  { name: 'new VM: node_id of no node', method: 'POST', url: '/v1/vms', as: 'tenant-admin', body: { disk_gb: 1, node_id: 'node-9' }, status: 404 },
  { name: 'tenant change: shared_pool text', method: 'PATCH', url: `/v1/tenants/${A}`, as: 'admin', body: { shared_pool: 'yes' }, status: 400, field: 'shared_pool' },
];

describe('bad fleet requests get problem+json and change nothing', () => {
  let h: Harness;
  let tenantAdmin: string;
  let agent: { token: string; keys: KeyPair };
  let vmId: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A);
    tenantAdmin = (await h.issueToken(A, 'service:tenant-admin')).token;
    agent = await h.issueToken(A, 'node:agent');
    const enrolled = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: NODE, capacity: CAPACITY } });
    expect(enrolled.statusCode, enrolled.body).toBe(201);
    const vm = await h.request('POST', '/v1/vms', { token: tenantAdmin, body: { disk_gb: 1, node_id: NODE } });
    vmId = vm.json<{ vm_id: string }>().vm_id;
    await scheduleOnce({ store: h.store, clock: h.clock, ids: () => 'unused' }, { cpuOvercommit: 4 });
  });
  afterAll(async () => {
    await h.close();
  });

  it('names every case uniquely, and the valid requests they start from are accepted', async () => {
    const names = CASES.map((c) => c.name);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
    const signed = { token: agent.token, signWith: agent.keys.privateKey };
    expect(
      (await h.request('POST', `/v1/nodes/${NODE}/heartbeat`, { ...signed, body: { capacity: CAPACITY, vms: [{ vm_id: vmId, state: 'running' }] } })).statusCode,
    ).toBe(200);
    const full = Buffer.alloc(64 * 1024).toString('base64');
    expect((await h.request('PUT', `/v1/nodes/${NODE}/vms/${vmId}/console`, { ...signed, body: { data: full } })).statusCode).toBe(204);
    expect((await h.request('GET', `/v1/nodes?limit=1`, { token: tenantAdmin })).statusCode).toBe(200);
  });

  it.each(CASES)('$name → $status', async (c) => {
    const before = await snapshotState(h);
    const url = c.url.replace('{vm}', vmId);
    const body = c.body === undefined ? undefined : JSON.parse(JSON.stringify(c.body).replaceAll('{vm}', vmId));
    const token = { agent: agent.token, 'tenant-admin': tenantAdmin, admin: h.adminToken }[c.as];
    const res = await h.request(c.method, url, { token, ...(body !== undefined ? { body } : {}), ...(c.as === 'agent' ? { signWith: agent.keys.privateKey } : {}) });
    const problem = expectProblem(res, c.status);
    if (c.field !== undefined) expect(problem.field).toBe(c.field);
    expect(await snapshotState(h)).toEqual(before);
  });
});
