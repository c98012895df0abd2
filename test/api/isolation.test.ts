/**
 * Authorisation and tenant isolation (SPEC §3 status codes, §4, §5 scopes, §6 "the tenant always
 * comes from the token"). The rules are kept as data, a route × role matrix of expected statuses in
 * the manner of supabase-storage, and one loop runs every cell through the real app with inject().
 *
 * Every refused cell must also change nothing: the tenants, tokens and VMs tables and the ledger are
 * compared before and after. Cells that would destroy something act on a resource made for them.
 */
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flushSessions } from '../../src/api/app.js';
import { makeIdSource, type ManualClock } from '../../src/clock.js';
import { loadAdminKey, loadLedgerSigner } from '../../src/config/data-dir.js';
import { mintAdminToken } from '../../src/control/admin-token.js';
import { signPendingCheckpoint } from '../../src/control/checkpoints.js';
import { hashLeaf } from '../../src/ledger/merkle.js';
import { readEntryRow } from '../../src/store/ledger.js';
import { generateKeyPair } from '../../src/tokens/keys.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { expectProblem, problemWithoutRequest, snapshotState } from './expectations.js';

const A = 'tenant-a';
const B = 'tenant-b';
const BIG_LIMITS = { max_vms: 10_000, storage_quota_gb: 1_000_000, api_rate_limit_rpm: 100_000 };
const CAPACITY = { cpus: 8, memory_mb_total: 16_384, memory_mb_available: 12_000, disk_gb_available: 500, kvm: true, load1: 0.5 };

const ROLES = ['platform-admin', 'a-admin', 'a-input', 'a-user', 'a-read', 'a-agent', 'b-admin', 'b-read'] as const;
type Role = (typeof ROLES)[number];

const ROLE_TENANT: Record<Role, string | null> = {
  'platform-admin': null,
  'a-admin': A,
  'a-input': A,
  'a-user': A,
  'a-read': A,
  'a-agent': A,
  'b-admin': B,
  'b-read': B,
};

/**
 * Path placeholders: {A} and {B} are the two tenants; {vmA}/{vmB} a VM made in that tenant for the
 * cell (stopped first when the cell starts it, so a wrongful start would change it); {tokA} a
 * tenant:read token of A made for the cell; {empty} a tenant with nothing in it and {full} one with a
 * VM and a token, each made for the cell; {sesA} a session of A (a tenant:read token used once and
 * flushed), made for the cell. {entA}/{entB} are the index of a ledger entry of that tenant and
 * {entP} of a platform entry (no tenant), each made for the cell; {size} is the ledger's size once
 * the cell's resources exist. {tokP} is a platform-admin token minted for the cell.
 *
 * The harness's app has no ledger signer, so /v1/ledger/key is a 404 for everyone (it is public: no
 * token is even looked at); a checkpoint is signed before the cells run, so /v1/ledger/checkpoint has
 * one to show to any token with tenant:read (a checkpoint holds only a tree size and a root hash).
 */
type Statuses = [number, number, number, number, number, number, number, number];

// prettier-ignore
const MATRIX: [route: string, statuses: Statuses][] = [
  //                                                admin a-adm a-inp a-usr a-rd a-agt b-adm b-rd
  ['POST /v1/tenants',                             [201,  403,  403,  403,  403, 403,  403,  403]],
  ['GET /v1/tenants',                              [200,  403,  403,  403,  403, 403,  403,  403]],
  ['GET /v1/tenants/{A}',                          [200,  200,  200,  200,  200, 403,  404,  404]],
  ['GET /v1/tenants/{B}',                          [200,  404,  404,  404,  404, 403,  200,  200]],
  ['PATCH /v1/tenants/{A}',                        [200,  403,  403,  403,  403, 403,  403,  403]],
  ['DELETE /v1/tenants/{A}',                       [409,  403,  403,  403,  403, 403,  403,  403]],
  ['DELETE /v1/tenants/{full}',                    [409,  403,  403,  403,  403, 403,  403,  403]],
  ['DELETE /v1/tenants/{full}?cascade=true',       [204,  403,  403,  403,  403, 403,  403,  403]],
  ['DELETE /v1/tenants/{empty}',                   [204,  403,  403,  403,  403, 403,  403,  403]],
  ['POST /v1/tenants/{A}/tokens',                  [201,  201,  403,  403,  403, 403,  404,  403]],
  ['GET /v1/tenants/{A}/tokens',                   [200,  200,  403,  403,  403, 403,  404,  403]],
  ['GET /v1/tenants/{B}/tokens',                   [200,  404,  403,  403,  403, 403,  200,  403]],
  ['DELETE /v1/tenants/{A}/tokens/{tokA}',         [200,  200,  403,  403,  403, 403,  404,  403]],
  // B revoking the id within B (a block it may not have seen yet): A's token is untouched.
  ['DELETE /v1/tenants/{B}/tokens/{tokA}',         [200,  404,  403,  403,  403, 403,  200,  403]],
  ['GET /v1/whoami',                               [200,  200,  200,  200,  200, 403,  200,  200]],
  ['GET /v1/sessions',                             [400,  200,  403,  403,  403, 403,  200,  403]],
  ['GET /v1/sessions?tenant_id={A}',               [200,  200,  403,  403,  403, 403,  403,  403]],
  ['GET /v1/sessions?tenant_id={B}',               [200,  403,  403,  403,  403, 403,  200,  403]],
  ['DELETE /v1/sessions/{sesA}',                   [400,  200,  403,  403,  403, 403,  404,  403]],
  ['DELETE /v1/sessions/{sesA}?tenant_id={A}',     [200,  200,  403,  403,  403, 403,  403,  403]],
  ['DELETE /v1/sessions/{sesA}?tenant_id={B}',     [404,  403,  403,  403,  403, 403,  404,  403]],
  ['GET /v1/admin/tokens',                         [200,  403,  403,  403,  403, 403,  403,  403]],
  ['DELETE /v1/admin/tokens/{tokP}',               [200,  403,  403,  403,  403, 403,  403,  403]],
  ['POST /v1/vms',                                 [400,  201,  201,  403,  403, 403,  201,  403]],
  ['POST /v1/vms?tenant_id={A}',                   [201,  201,  201,  403,  403, 403,  403,  403]],
  ['POST /v1/vms?tenant_id={B}',                   [201,  403,  403,  403,  403, 403,  201,  403]],
  ['GET /v1/vms',                                  [200,  200,  200,  200,  200, 403,  200,  200]],
  ['GET /v1/vms?tenant_id={A}',                    [200,  200,  200,  200,  200, 403,  403,  403]],
  ['GET /v1/vms?tenant_id={B}',                    [200,  403,  403,  403,  403, 403,  200,  200]],
  ['GET /v1/vms?name=twin',                        [200,  200,  200,  200,  200, 403,  200,  200]],
  ['GET /v1/vms?name=twin&tenant_id={A}',          [200,  200,  200,  200,  200, 403,  403,  403]],
  ['GET /v1/vms/{vmA}',                            [200,  200,  200,  200,  200, 403,  404,  404]],
  ['GET /v1/vms/{vmA}?tenant_id={A}',              [200,  200,  200,  200,  200, 403,  403,  403]],
  ['GET /v1/vms/{vmA}?tenant_id={B}',              [404,  403,  403,  403,  403, 403,  404,  404]],
  ['GET /v1/vms/{vmB}',                            [200,  404,  404,  404,  404, 403,  200,  200]],
  ['POST /v1/vms/{vmA}/start',                     [200,  200,  200,  200,  403, 403,  404,  403]],
  ['POST /v1/vms/{vmA}/start?tenant_id={A}',       [200,  200,  200,  200,  403, 403,  403,  403]],
  ['POST /v1/vms/{vmA}/start?tenant_id={B}',       [404,  403,  403,  403,  403, 403,  404,  403]],
  ['POST /v1/vms/{vmA}/stop',                      [200,  200,  200,  200,  403, 403,  404,  403]],
  ['POST /v1/vms/{vmA}/stop?tenant_id={A}',        [200,  200,  200,  200,  403, 403,  403,  403]],
  ['DELETE /v1/vms/{vmA}',                         [204,  204,  204,  403,  403, 403,  404,  403]],
  ['DELETE /v1/vms/{vmA}?tenant_id={A}',           [204,  204,  204,  403,  403, 403,  403,  403]],
  ['DELETE /v1/vms/{vmA}?tenant_id={B}',           [404,  403,  403,  403,  403, 403,  404,  403]],
  ['DELETE /v1/vms/{vmB}',                         [204,  404,  404,  403,  403, 403,  204,  403]],
  // The fleet (SPEC §7). {nodeAgt} is the node a-agent's key enrolled; {nodeA}/{nodeB} a node of that
  // tenant enrolled for the cell with its own key. Only a node token may act as a node, only as its
  // own node (a-agent's key already enrolled {nodeAgt}, so its enroll is a conflict).
  ['POST /v1/nodes',                               [403,  403,  403,  403,  403, 409,  403,  403]],
  ['POST /v1/nodes/{nodeAgt}/heartbeat',           [403,  403,  403,  403,  403, 200,  403,  403]],
  ['POST /v1/nodes/{nodeA}/heartbeat',             [403,  403,  403,  403,  403, 403,  403,  403]],
  ['POST /v1/nodes/{nodeB}/heartbeat',             [403,  403,  403,  403,  403, 404,  403,  403]],
  ['PUT /v1/nodes/{nodeAgt}/vms/{vmA}/console',    [403,  403,  403,  403,  403, 404,  403,  403]],
  ['GET /v1/nodes',                                [200,  200,  200,  200,  200, 403,  200,  200]],
  ['GET /v1/nodes?tenant_id={A}',                  [200,  200,  200,  200,  200, 403,  403,  403]],
  ['GET /v1/nodes/{nodeA}',                        [404,  200,  200,  200,  200, 403,  404,  404]],
  ['GET /v1/nodes/{nodeA}?tenant_id={A}',          [200,  200,  200,  200,  200, 403,  403,  403]],
  ['GET /v1/nodes/{nodeB}',                        [404,  404,  404,  404,  404, 403,  200,  200]],
  ['DELETE /v1/nodes/{nodeA}',                     [404,  204,  403,  403,  403, 403,  404,  403]],
  ['DELETE /v1/nodes/{nodeA}?tenant_id={A}',       [204,  204,  403,  403,  403, 403,  403,  403]],
  ['DELETE /v1/nodes/{nodeB}',                     [404,  404,  403,  403,  403, 403,  204,  403]],
  ['GET /v1/vms/{vmA}/console',                    [200,  200,  200,  200,  200, 403,  404,  404]],
  ['GET /v1/vms/{vmB}/console',                    [200,  404,  404,  404,  404, 403,  200,  200]],
  ['GET /v1/ledger/key',                           [404,  404,  404,  404,  404, 404,  404,  404]],
  ['GET /v1/ledger/checkpoint',                    [200,  200,  200,  200,  200, 403,  200,  200]],
  ['GET /v1/ledger/entries',                       [200,  200,  200,  200,  200, 403,  200,  200]],
  ['GET /v1/ledger/entries?tenant_id={A}',         [200,  200,  200,  200,  200, 403,  403,  403]],
  ['GET /v1/ledger/entries?tenant_id={B}',         [200,  403,  403,  403,  403, 403,  200,  200]],
  ['GET /v1/ledger/entries?vm_id={vmB}',           [200,  200,  200,  200,  200, 403,  200,  200]],
  ['GET /v1/ledger/entries?event_type=TOKEN_ISSUED&limit=1000', [200, 200, 200, 200, 200, 403, 200, 200]],
  ['GET /v1/ledger/proof/inclusion?index={entA}&tree_size={size}', [200, 200, 200, 200, 200, 403, 404, 404]],
  ['GET /v1/ledger/proof/inclusion?index={entB}&tree_size={size}', [200, 404, 404, 404, 404, 403, 200, 200]],
  ['GET /v1/ledger/proof/inclusion?index={entP}&tree_size={size}', [200, 404, 404, 404, 404, 403, 404, 404]],
  ['GET /v1/ledger/proof/consistency?from=1&to=2', [200,  200,  200,  200,  200, 403,  200,  200]],
  ['GET /v1/ledger/proof/consistency?from=2&to={size}', [200, 200, 200, 200, 200, 403, 200, 200]],
];

interface Cell {
  route: string;
  role: Role;
  status: number;
}

const CELLS: Cell[] = MATRIX.flatMap(([route, statuses]) => ROLES.map((role, i) => ({ route, role, status: statuses[i]! })));

/** The body each route takes; the rest take none. */
function bodyFor(method: string, template: string, fresh: () => string): unknown {
  const path = template.split('?')[0]!;
  if (method === 'POST' && path === '/v1/tenants') return { tenant_id: fresh(), display_name: 'Made by the matrix' };
  if (method === 'PATCH') return { display_name: `Renamed ${fresh()}` };
  if (method === 'POST' && path.endsWith('/tokens')) {
    return { subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:read', expires_in_seconds: 3600 };
  }
  if (method === 'POST' && path === '/v1/vms') return { disk_gb: 1 };
  if (method === 'POST' && path === '/v1/nodes') return { node_id: fresh(), capacity: CAPACITY };
  if (method === 'POST' && path.endsWith('/heartbeat')) return { capacity: CAPACITY, vms: [] };
  if (method === 'PUT' && path.endsWith('/console')) return { data: Buffer.from('boot\n').toString('base64') };
  return undefined;
}

/** Every `tenant_id` value anywhere in a JSON body, including inside ledger entries' stored lines. */
function tenantIdsIn(value: unknown): unknown[] {
  if (Array.isArray(value)) return value.flatMap(tenantIdsIn);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    if (key === 'tenant_id') return [inner];
    if (key === 'leaf_input' && typeof inner === 'string') return tenantIdsIn(JSON.parse(inner));
    return tenantIdsIn(inner);
  });
}

describe('authorisation matrix: route × role → status', () => {
  let h: Harness;
  const tokens = {} as Record<Role, string>;
  const signers: Partial<Record<Role, KeyObject>> = {};
  let counter = 0;
  const fresh = () => `iso-${++counter}`;
  const AGENT_NODE = 'agent-node';

  async function createVm(tenantId: string, opts: { stopped?: boolean } = {}): Promise<string> {
    const res = await h.request('POST', `/v1/vms?tenant_id=${tenantId}`, { token: h.adminToken, body: { disk_gb: 1 } });
    expect(res.statusCode, res.body).toBe(201);
    const vmId = res.json<{ vm_id: string }>().vm_id;
    if (opts.stopped) {
      const stop = await h.request('POST', `/v1/vms/${vmId}/stop`, { token: h.adminToken });
      expect(stop.statusCode, stop.body).toBe(200);
    }
    return vmId;
  }

  /** Makes a ledger entry of `tenantId` (null: a platform entry) and returns its index. */
  async function ledgerEntryOf(tenantId: string | null): Promise<number> {
    if (tenantId === null) {
      await mintPlatformToken();
    } else {
      await h.issueToken(tenantId, 'tenant:read');
    }
    const index = (await h.ledgerCount()) - 1;
    expect((await readEntryRow(h.store.db, index))?.tenantId).toBe(tenantId);
    return index;
  }

  /** Makes a session of `tenantId`: a token of it used once, and flushed. */
  async function sessionOf(tenantId: string): Promise<string> {
    const { token, tokenId } = await h.issueToken(tenantId, 'tenant:read');
    expect((await h.request('GET', '/v1/whoami', { token })).statusCode).toBe(200);
    await flushSessions(h.app);
    return tokenId;
  }

  function mintPlatformToken() {
    return mintAdminToken({ store: h.store, clock: h.clock, ids: makeIdSource(h.clock) }, h.keyring, loadAdminKey(h.dataDir).publicKey, 3600);
  }

  /** Enrolls a node in `tenantId` with a fresh key and node token; returns its id. */
  async function enrollNode(tenantId: string): Promise<string> {
    const agent = await h.issueToken(tenantId, 'node:agent');
    const nodeId = fresh();
    const res = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: nodeId, capacity: CAPACITY } });
    expect(res.statusCode, res.body).toBe(201);
    return nodeId;
  }

  /** Fills in the route's placeholders, making the per-cell resources it names. */
  async function resolve(template: string): Promise<string> {
    let url = template.replaceAll('{A}', A).replaceAll('{B}', B);
    if (url.includes('{vmA}')) url = url.replace('{vmA}', await createVm(A, { stopped: url.includes('/start') }));
    if (url.includes('{vmB}')) url = url.replace('{vmB}', await createVm(B));
    for (const [placeholder, tenant] of [
      ['{nodeA}', A],
      ['{nodeB}', B],
    ] as const) {
      if (url.includes(placeholder)) url = url.replace(placeholder, await enrollNode(tenant));
    }
    url = url.replace('{nodeAgt}', AGENT_NODE);
    if (url.includes('{tokA}')) url = url.replace('{tokA}', (await h.issueToken(A, 'tenant:read')).tokenId);
    if (url.includes('{sesA}')) url = url.replace('{sesA}', await sessionOf(A));
    if (url.includes('{tokP}')) url = url.replace('{tokP}', (await mintPlatformToken()).row.token_id);
    if (url.includes('{empty}') || url.includes('{full}')) {
      const id = fresh();
      await h.createTenant(id);
      if (url.includes('{full}')) {
        await createVm(id);
        await h.issueToken(id, 'tenant:read');
      }
      url = url.replace(/\{(empty|full)\}/, id);
    }
    if (url.includes('{entA}')) url = url.replace('{entA}', String(await ledgerEntryOf(A)));
    if (url.includes('{entB}')) url = url.replace('{entB}', String(await ledgerEntryOf(B)));
    if (url.includes('{entP}')) url = url.replace('{entP}', String(await ledgerEntryOf(null)));
    if (url.includes('{size}')) url = url.replace('{size}', String(await h.ledgerCount()));
    return url;
  }

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A, BIG_LIMITS);
    await h.createTenant(B, BIG_LIMITS);
    // Tenant A always holds a VM, so deleting it without cascade is a conflict. Both tenants hold a
    // VM named "twin", so a name filter that leaked across tenants would show the other's.
    await createVm(A);
    await createVm(B);
    for (const tenant of [A, B]) {
      const twin = await h.request('POST', `/v1/vms?tenant_id=${tenant}`, { token: h.adminToken, body: { name: 'twin', disk_gb: 1 } });
      expect(twin.statusCode, twin.body).toBe(201);
    }
    tokens['platform-admin'] = h.adminToken;
    tokens['a-admin'] = (await h.issueToken(A, 'service:tenant-admin')).token;
    tokens['a-input'] = (await h.issueToken(A, 'tenant:input')).token;
    tokens['a-user'] = (await h.issueToken(A, 'tenant:user')).token;
    tokens['a-read'] = (await h.issueToken(A, 'tenant:read')).token;
    const agent = await h.issueToken(A, 'node:agent');
    tokens['a-agent'] = agent.token;
    // node:agent tokens always prove possession (SPEC §5): its requests are signed by its key.
    signers['a-agent'] = agent.keys.privateKey;
    const enrolled = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: AGENT_NODE, capacity: CAPACITY } });
    expect(enrolled.statusCode, enrolled.body).toBe(201);
    tokens['b-admin'] = (await h.issueToken(B, 'service:tenant-admin')).token;
    tokens['b-read'] = (await h.issueToken(B, 'tenant:read')).token;
    expect(await signPendingCheckpoint(h.store, loadLedgerSigner(h.dataDir), h.clock)).not.toBeNull();
  });
  afterAll(async () => {
    await h.close();
  });

  it('covers every route the API serves', () => {
    const served = Object.entries((h.app.swagger() as { paths: Record<string, Record<string, unknown>> }).paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    const inMatrix = MATRIX.map(([route]) =>
      route
        .split('?')[0]!
        .replace(/\{(A|B|empty|full)\}/g, '{tenant_id}')
        .replace(/\{vm[AB]\}/g, '{vm_id}')
        .replace(/\{(tokA|tokP|sesA)\}/, '{token_id}')
        .replace(/\{node(A|B|Agt)\}/, '{node_id}'),
    );
    expect(served.length).toBeGreaterThan(10);
    expect([...new Set(inMatrix)].sort()).toEqual([...new Set(served)].sort());
  });

  it.each(CELLS)('$route as $role → $status', async ({ route, role, status }) => {
    const [method, template] = route.split(' ') as [string, string];
    const url = await resolve(template);
    const body = bodyFor(method, template, fresh);
    const before = await snapshotState(h);

    const signWith = signers[role];
    const res = await h.request(method, url, { token: tokens[role], ...(body !== undefined ? { body } : {}), ...(signWith ? { signWith } : {}) });

    if (status >= 400) {
      const problem = expectProblem(res, status);
      expect(problem.code).toBe({ 400: 'invalid_input', 403: 'forbidden', 404: 'not_found', 409: 'conflict' }[status]);
      expect(await snapshotState(h)).toEqual(before);
    } else {
      expect(res.statusCode, res.body).toBe(status);
      // A tenant's token only ever sees (and creates in) its own tenant: never another tenant's
      // records or ledger entries, nor platform entries (tenant_id null).
      const own = ROLE_TENANT[role];
      const isJson = /^application\/json/.test(String(res.headers['content-type']));
      if (own !== null && res.body.length > 0 && isJson) {
        const body = res.json<Record<string, unknown>>();
        for (const tenantId of tenantIdsIn(body)) expect(tenantId).toBe(own);
        // An inclusion proof is for an entry of its own tenant, whose stored line it proves.
        if (typeof body.leaf_hash === 'string') {
          const entry = await readEntryRow(h.store.db, body.index as number);
          expect(entry?.tenantId).toBe(own);
          expect(hashLeaf(Buffer.from(entry!.line)).toString('hex')).toBe(body.leaf_hash);
        }
      }
    }
  });
});

describe("another tenant's resources are indistinguishable from missing ones", () => {
  let h: Harness;
  let bAdmin: string;
  let bRead: string;
  let aAdmin: string;
  let aVm: string;
  let aTokenId: string;
  const MISSING_VM = 'vm-00000000000000000000000000';
  const MISSING_TOKEN = 'tok-00000000000000000000000000';

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A, BIG_LIMITS);
    await h.createTenant(B, BIG_LIMITS);
    const a = await h.issueToken(A, 'service:tenant-admin');
    aAdmin = a.token;
    aTokenId = a.tokenId;
    bAdmin = (await h.issueToken(B, 'service:tenant-admin')).token;
    bRead = (await h.issueToken(B, 'tenant:read')).token;
    const vm = await h.request('POST', '/v1/vms', { token: aAdmin, body: { name: 'secret-db' } });
    expect(vm.statusCode).toBe(201);
    aVm = vm.json<{ vm_id: string }>().vm_id;
  });
  afterAll(async () => {
    await h.close();
  });

  /** Sends the same request at an existing resource of A and at a missing one; the answers must match. */
  async function expectSameAnswer(token: string, method: string, existing: string, missing: string, status: number, body?: unknown): Promise<void> {
    const before = await snapshotState(h);
    const opts = { token, ...(body !== undefined ? { body } : {}) };
    const forA = await h.request(method, existing, opts);
    const forMissing = await h.request(method, missing, opts);
    const a = expectProblem(forA, status);
    const m = expectProblem(forMissing, status);
    expect(problemWithoutRequest(a)).toEqual(problemWithoutRequest(m));
    expect(forA.headers['content-type']).toBe(forMissing.headers['content-type']);
    expect(await snapshotState(h)).toEqual(before);
  }

  it.each([
    ['GET', ''],
    ['DELETE', ''],
    ['POST', '/start'],
    ['POST', '/stop'],
  ])("%s /v1/vms/{id}%s with B's token: A's VM answers exactly like a missing VM", async (method, suffix) => {
    await expectSameAnswer(bAdmin, method, `/v1/vms/${aVm}${suffix}`, `/v1/vms/${MISSING_VM}${suffix}`, 404);
  });

  it("GET /v1/vms/{id} with B's read token: A's VM answers exactly like a missing VM", async () => {
    await expectSameAnswer(bRead, 'GET', `/v1/vms/${aVm}`, `/v1/vms/${MISSING_VM}`, 404);
  });

  it('B naming ?tenant_id=A is refused exactly like naming a tenant that does not exist', async () => {
    for (const [method, path] of [
      ['GET', '/v1/vms'],
      ['POST', '/v1/vms'],
      ['GET', `/v1/vms/${aVm}`],
      ['DELETE', `/v1/vms/${aVm}`],
      ['POST', `/v1/vms/${aVm}/start`],
      ['GET', '/v1/ledger/entries'],
      ['GET', '/v1/sessions'],
    ] as const) {
      const body = method === 'POST' && path === '/v1/vms' ? { disk_gb: 1 } : undefined;
      await expectSameAnswer(bAdmin, method, `${path}?tenant_id=${A}`, `${path}?tenant_id=no-such-tenant`, 403, body);
    }
  });

  it("tenant A's record, token list and token issuing answer B exactly like a missing tenant", async () => {
    await expectSameAnswer(bAdmin, 'GET', `/v1/tenants/${A}`, '/v1/tenants/no-such-tenant', 404);
    await expectSameAnswer(bRead, 'GET', `/v1/tenants/${A}`, '/v1/tenants/no-such-tenant', 404);
    await expectSameAnswer(bAdmin, 'GET', `/v1/tenants/${A}/tokens`, '/v1/tenants/no-such-tenant/tokens', 404);
    const issue = { subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:read', expires_in_seconds: 60 };
    await expectSameAnswer(bAdmin, 'POST', `/v1/tenants/${A}/tokens`, '/v1/tenants/no-such-tenant/tokens', 404, issue);
  });

  it("B cannot end A's session, which answers exactly like a missing one", async () => {
    await flushSessions(h.app);
    await expectSameAnswer(bAdmin, 'DELETE', `/v1/sessions/${aTokenId}`, `/v1/sessions/${MISSING_TOKEN}`, 404);
    expect((await h.request('GET', '/v1/whoami', { token: aAdmin })).statusCode).toBe(200);
  });

  it("B cannot revoke A's token, by A's path or its own, and learns nothing from trying", async () => {
    await expectSameAnswer(bAdmin, 'DELETE', `/v1/tenants/${A}/tokens/${aTokenId}`, `/v1/tenants/no-such-tenant/tokens/${aTokenId}`, 404);
    // By its own path, any id B names is revoked in B alone, as a block B may not have seen yet: A's
    // token id answers like a missing one, and A's row is untouched.
    const aRowBefore = await h.store.db.selectFrom('tokens').selectAll().where('token_id', '=', aTokenId).executeTakeFirst();
    const byOwnPath = await h.request('DELETE', `/v1/tenants/${B}/tokens/${aTokenId}`, { token: bAdmin });
    const missingByOwnPath = await h.request('DELETE', `/v1/tenants/${B}/tokens/${MISSING_TOKEN}`, { token: bAdmin });
    expect(byOwnPath.statusCode).toBe(200);
    expect({ ...byOwnPath.json(), token_id: 'x', revoked_at: 'x' }).toEqual({ ...missingByOwnPath.json(), token_id: 'x', revoked_at: 'x' });
    expect(await h.store.db.selectFrom('tokens').selectAll().where('token_id', '=', aTokenId).executeTakeFirst()).toEqual(aRowBefore);
    // A's token still works: nothing was revoked, in the store or in memory.
    const whoami = await h.request('GET', '/v1/whoami', { token: aAdmin });
    expect(whoami.statusCode).toBe(200);
    expect(whoami.json()).toMatchObject({ tenant_id: A, token_id: aTokenId });
  });
});

describe("lists never show another tenant's items", () => {
  let h: Harness;
  let bAdmin: string;
  let aAdmin: string;
  let aAdminTokenId: string;
  const aVms: string[] = [];
  const bVms: string[] = [];

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A, BIG_LIMITS);
    await h.createTenant(B, BIG_LIMITS);
    ({ token: aAdmin, tokenId: aAdminTokenId } = await h.issueToken(A, 'service:tenant-admin'));
    bAdmin = (await h.issueToken(B, 'service:tenant-admin')).token;
    // Interleave the two tenants' VMs, a millisecond apart, so ids (time-ordered) alternate A, B, A, B...
    for (let i = 0; i < 4; i++) {
      for (const [token, ids] of [
        [aAdmin, aVms],
        [bAdmin, bVms],
      ] as const) {
        (h.clock as ManualClock).advance(1);
        const res = await h.request('POST', '/v1/vms', { token, body: { name: `vm-${i}`, disk_gb: 1 } });
        expect(res.statusCode).toBe(201);
        ids.push(res.json<{ vm_id: string }>().vm_id);
      }
      (h.clock as ManualClock).advance(1);
      await h.issueToken(A, 'tenant:read');
      (h.clock as ManualClock).advance(1);
      await h.issueToken(B, 'tenant:read');
    }
  });
  afterAll(async () => {
    await h.close();
  });

  async function listVms(token: string, query: string): Promise<{ items: { vm_id: string; tenant_id: string }[]; next_cursor: string | null }> {
    const res = await h.request('GET', `/v1/vms${query}`, { token });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  }

  const cursorAfter = (id: string) => Buffer.from(JSON.stringify({ after: id })).toString('base64url');

  it("B's listing holds exactly B's VMs, with and without ?tenant_id=B", async () => {
    for (const query of ['', `?tenant_id=${B}`, '?limit=1000']) {
      const page = await listVms(bAdmin, query);
      expect(page.items.map((vm) => vm.vm_id)).toEqual(bVms);
      expect(page.next_cursor).toBeNull();
    }
  });

  it("?name= finds the caller's own VM of that name, never another tenant's of the same name", async () => {
    const ids = (page: { items: { vm_id: string }[] }) => page.items.map((vm) => vm.vm_id);
    // Both tenants hold VMs named vm-0 … vm-3.
    for (const [i, name] of ['vm-0', 'vm-1', 'vm-2', 'vm-3'].entries()) {
      expect(ids(await listVms(bAdmin, `?name=${name}`))).toEqual([bVms[i]]);
      expect(ids(await listVms(aAdmin, `?name=${name}`))).toEqual([aVms[i]]);
      expect(ids(await listVms(bAdmin, `?name=${name}&tenant_id=${B}&limit=1`))).toEqual([bVms[i]]);
      expect(ids(await listVms(h.adminToken, `?name=${name}&tenant_id=${A}`))).toEqual([aVms[i]]);
      expect(ids(await listVms(h.adminToken, `?name=${name}`))).toEqual([aVms[i], bVms[i]]);
    }
    expect((await listVms(bAdmin, '?name=no-such-vm')).items).toEqual([]);
    expectProblem(await h.request('GET', `/v1/vms?name=vm-0&tenant_id=${A}`, { token: bAdmin }), 403);
    // A filtered page is cached apart from the unfiltered one.
    expect(ids(await listVms(bAdmin, ''))).toEqual(bVms);
  });

  it("B's listing stays B's when paged one item at a time", async () => {
    const seen: string[] = [];
    let query = '?limit=1';
    for (;;) {
      const page = await listVms(bAdmin, query);
      seen.push(...page.items.map((vm) => vm.vm_id));
      if (page.next_cursor === null) break;
      query = `?limit=1&cursor=${page.next_cursor}`;
    }
    expect(seen).toEqual(bVms);
  });

  it("a cursor taken from A's listing gives B only B's later VMs", async () => {
    const aPage = await listVms(aAdmin, '?limit=1');
    expect(aPage.items.map((vm) => vm.vm_id)).toEqual([aVms[0]]);
    expect(aPage.next_cursor).not.toBeNull();
    const bPage = await listVms(bAdmin, `?cursor=${aPage.next_cursor}`);
    // A's first VM comes before all of B's, so B sees all of its own and nothing of A's.
    expect(bPage.items.map((vm) => vm.vm_id)).toEqual(bVms);
    for (const [i, aVm] of aVms.entries()) {
      const page = await listVms(bAdmin, `?cursor=${cursorAfter(aVm)}`);
      expect(page.items.map((vm) => vm.vm_id)).toEqual(bVms.slice(i));
    }
    expect((await listVms(bAdmin, `?cursor=${cursorAfter('')}`)).items.map((vm) => vm.vm_id)).toEqual(bVms);
  });

  it("B naming ?tenant_id=A with A's cursor is refused", async () => {
    const aPage = await listVms(aAdmin, '?limit=1');
    for (const query of [`?tenant_id=${A}`, `?tenant_id=${A}&cursor=${aPage.next_cursor}`, `?tenant_id=${A}&limit=1000`]) {
      const res = await h.request('GET', `/v1/vms${query}`, { token: bAdmin });
      expectProblem(res, 403);
    }
  });

  it("B's token list never holds A's tokens, even from A's cursor", async () => {
    const listTokens = async (token: string, tenantId: string, query = '') => {
      const res = await h.request('GET', `/v1/tenants/${tenantId}/tokens${query}`, { token });
      expect(res.statusCode, res.body).toBe(200);
      return res.json<{ items: { token_id: string; tenant_id: string }[]; next_cursor: string | null }>();
    };
    const aTokens = (await listTokens(h.adminToken, A)).items.map((t) => t.token_id);
    const bTokens = (await listTokens(h.adminToken, B)).items.map((t) => t.token_id);
    expect(aTokens.length).toBeGreaterThan(1);
    expect(bTokens.length).toBeGreaterThan(1);

    expect((await listTokens(bAdmin, B)).items.map((t) => t.token_id)).toEqual(bTokens);
    const aFirst = await listTokens(aAdmin, A, '?limit=1');
    expect(aFirst.next_cursor).not.toBeNull();
    const fromA = await listTokens(bAdmin, B, `?cursor=${aFirst.next_cursor}`);
    expect(fromA.items.length).toBeGreaterThan(0);
    for (const t of fromA.items) {
      expect(t.tenant_id).toBe(B);
      expect(aTokens).not.toContain(t.token_id);
    }
    for (const aToken of aTokens) {
      const page = await listTokens(bAdmin, B, `?cursor=${cursorAfter(aToken)}`);
      expect(page.items.every((t) => t.tenant_id === B && bTokens.includes(t.token_id))).toBe(true);
    }
    expectProblem(await h.request('GET', `/v1/tenants/${A}/tokens?cursor=${aFirst.next_cursor}`, { token: bAdmin }), 404);
  });

  it("B's ledger entries never include A's or the platform's, whatever cursor or filter B sends", async () => {
    const listEntries = async (token: string, query: string) => {
      const res = await h.request('GET', `/v1/ledger/entries${query}`, { token });
      expect(res.statusCode, res.body).toBe(200);
      return res.json<{ items: { index: number; entry: { tenant_id: string | null } }[]; next_cursor: string | null }>();
    };
    const all = (await listEntries(h.adminToken, '?limit=1000')).items;
    const bIndexes = all.filter((e) => e.entry.tenant_id === B).map((e) => e.index);
    expect(bIndexes.length).toBeGreaterThan(4);
    expect(all.some((e) => e.entry.tenant_id === null)).toBe(true);

    expect((await listEntries(bAdmin, '')).items.map((e) => e.index)).toEqual(bIndexes);
    const seen: number[] = [];
    for (let query = '?limit=1'; ;) {
      const page = await listEntries(bAdmin, query);
      seen.push(...page.items.map((e) => e.index));
      if (page.next_cursor === null) break;
      query = `?limit=1&cursor=${page.next_cursor}`;
    }
    expect(seen).toEqual(bIndexes);
    // A cursor from A's listing, or naming any index, gives B only its own later entries.
    const aFirst = await listEntries(aAdmin, '?limit=1');
    expect(aFirst.next_cursor).not.toBeNull();
    const after = aFirst.items[0]!.index;
    expect((await listEntries(bAdmin, `?cursor=${aFirst.next_cursor}`)).items.map((e) => e.index)).toEqual(bIndexes.filter((i) => i > after));
    for (const { index } of all) {
      const page = await listEntries(bAdmin, `?limit=1000&cursor=${cursorAfter(String(index))}`);
      expect(page.items.map((e) => e.index)).toEqual(bIndexes.filter((i) => i > index));
    }
    // Filters naming A's VMs or A's token find nothing for B.
    for (const vmId of aVms) expect((await listEntries(bAdmin, `?vm_id=${vmId}`)).items).toEqual([]);
    expect((await listEntries(bAdmin, `?token_id=${aAdminTokenId}`)).items).toEqual([]);
    expect((await listEntries(aAdmin, `?token_id=${aAdminTokenId}`)).items.length).toBeGreaterThan(0);
    // B naming A, with or without A's cursor, is refused.
    for (const query of [`?tenant_id=${A}`, `?tenant_id=${A}&cursor=${aFirst.next_cursor}`]) {
      expectProblem(await h.request('GET', `/v1/ledger/entries${query}`, { token: bAdmin }), 403);
    }
  });

  it('the tenant list is for platform admins only', async () => {
    expectProblem(await h.request('GET', '/v1/tenants', { token: bAdmin }), 403);
    const res = await h.request('GET', '/v1/tenants', { token: h.adminToken });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ items: { tenant_id: string }[] }>().items.map((t) => t.tenant_id)).toEqual([A, B]);
  });

  it("a VM created with B's token lands in B whatever the request says", async () => {
    const before = await snapshotState(h);
    const smuggled = await h.request('POST', '/v1/vms', { token: bAdmin, body: { name: 'smuggled', tenant_id: A } });
    expect(expectProblem(smuggled, 400).field).toBe('tenant_id');
    expect(await snapshotState(h)).toEqual(before);
    const created = await h.request('POST', '/v1/vms', { token: bAdmin, body: { name: 'own' } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ tenant_id: B, name: 'own' });
    const aList = await listVms(aAdmin, '');
    expect(aList.items.map((vm) => vm.vm_id)).toEqual(aVms);
  });
});
