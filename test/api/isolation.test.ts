/**
 * Authorisation and tenant isolation (SPEC §3 status codes, §4, §5 scopes and tiers, §6 "the tenant
 * always comes from the token"), in the manner of supabase-storage: the rules are data and one loop
 * runs them through the real app with inject() and real tokens.
 *
 * The rules are the route table's access rows (src/api/routes/access.ts): for every route, what the
 * platform admin and each tenant tier (tenant-admin, input, user, read, node:agent) get, with a token
 * of the tenant the request acts on ("own") and with a token of another tenant ("other"). This file
 * gives each row the request that exercises it (REQUESTS), plus further requests of the same routes
 * (FURTHER), and checks that the table has a row for every route the app serves. node:agent tokens
 * sign every request (RFC 9421), as they must.
 *
 * Every refused cell must also change nothing: the tenants, tokens, VMs and block usage and the
 * ledger are compared before and after. Cells that would destroy something act on a resource made
 * for them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flushSessions } from '../../src/api/app.js';
import { ROUTE_ACCESS, TENANT_TIERS, servedRoutes, type RouteKey, type TierStatuses } from '../../src/api/routes/access.js';
import { makeIdSource, type ManualClock } from '../../src/clock.js';
import { initDataDir, loadAdminKey, loadLedgerSigner } from '../../src/config/data-dir.js';
import { mintAdminToken } from '../../src/control/admin-token.js';
import { signPendingCheckpoint } from '../../src/control/checkpoints.js';
import { integrateEntries } from '../../src/store/ledger-tree.js';
import { hashLeaf } from '../../src/ledger/merkle.js';
import { readEntryRow } from '../../src/store/ledger.js';
import { generateKeyPair } from '../../src/tokens/keys.js';
import type { Scope } from '../../src/tokens/scopes.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { expectProblem, problemWithoutRequest, snapshotState } from './expectations.js';

const A = 'tenant-a';
const B = 'tenant-b';
const BIG_LIMITS = { max_vms: 10_000, storage_quota_gb: 1_000_000, api_rate_limit_rpm: 100_000 };
const CAPACITY = { cpus: 8, memory_mb_total: 16_384, memory_mb_available: 12_000, disk_gb_available: 500, kvm: true, load1: 0.5 };
/** The node each tenant's node:agent holder enrolled before the cells run, by tenant. */
const AGENT_NODES = { A: 'agent-node-a', B: 'agent-node-b' } as const;

/**
 * The request that exercises each row. Requests act on tenant A: its own tokens are A's, the other
 * tenant's are B's. Placeholders: {A}, {B} the two tenants; {vmA}/{vmB} a VM made in that tenant
 * for the cell (stopped first when the cell starts it, so a wrongful start would change it); {tokA}
 * a tenant:read token of A and {tokP} a platform-admin token, made for the cell; {sesA} a session of
 * A (a tenant:read token used once and flushed); {entA}/{entB}/{entP} the index of a ledger entry of
 * A, of B, of the platform (no tenant), made for the cell, and {size} the ledger's size once the
 * cell's resources exist. {empty} and {full} are a tenant made for the cell, empty or holding a VM
 * and a token: then the "own" tokens are that tenant's, issued for the cell. {nodeAgt} is the node
 * A's node:agent holder enrolled (B's holder enrolled one of another id in B); {nodeA} a node of A
 * enrolled for the cell with a key of its own.
 */
const REQUESTS: Record<RouteKey, string> = {
  'GET /healthz': '/healthz',
  'GET /readyz': '/readyz',
  'GET /openapi.json': '/openapi.json',
  'GET /v1/version': '/v1/version',
  'GET /metrics': '/metrics',
  'GET /console': '/console/',
  'GET /console/*': '/console/index.html',
  'POST /v1/tenants': '/v1/tenants',
  'GET /v1/tenants': '/v1/tenants',
  'GET /v1/tenants/:tenant_id': '/v1/tenants/{A}',
  'PATCH /v1/tenants/:tenant_id': '/v1/tenants/{A}',
  'DELETE /v1/tenants/:tenant_id': '/v1/tenants/{empty}',
  'POST /v1/tenants/:tenant_id/tokens': '/v1/tenants/{A}/tokens',
  'GET /v1/tenants/:tenant_id/tokens': '/v1/tenants/{A}/tokens',
  'DELETE /v1/tenants/:tenant_id/tokens/:token_id': '/v1/tenants/{A}/tokens/{tokA}',
  'GET /v1/admin/tokens': '/v1/admin/tokens',
  'DELETE /v1/admin/tokens/:token_id': '/v1/admin/tokens/{tokP}',
  'GET /v1/admin/keys': '/v1/admin/keys',
  'GET /v1/whoami': '/v1/whoami',
  'GET /v1/sessions': '/v1/sessions?tenant_id={A}',
  'DELETE /v1/sessions/:token_id': '/v1/sessions/{sesA}?tenant_id={A}',
  'POST /v1/vms': '/v1/vms?tenant_id={A}',
  'GET /v1/vms': '/v1/vms?tenant_id={A}',
  'GET /v1/vms/:vm_id': '/v1/vms/{vmA}',
  'DELETE /v1/vms/:vm_id': '/v1/vms/{vmA}',
  'POST /v1/vms/:vm_id/start': '/v1/vms/{vmA}/start',
  'POST /v1/vms/:vm_id/stop': '/v1/vms/{vmA}/stop',
  'GET /v1/vms/:vm_id/console': '/v1/vms/{vmA}/console',
  'POST /v1/nodes': '/v1/nodes',
  'POST /v1/nodes/:node_id/heartbeat': '/v1/nodes/{nodeAgt}/heartbeat',
  'PUT /v1/nodes/:node_id/vms/:vm_id/console': '/v1/nodes/{nodeAgt}/vms/{vmA}/console',
  'GET /v1/nodes': '/v1/nodes?tenant_id={A}',
  'GET /v1/nodes/:node_id': '/v1/nodes/{nodeA}?tenant_id={A}',
  'DELETE /v1/nodes/:node_id': '/v1/nodes/{nodeA}?tenant_id={A}',
  'GET /v1/ledger/key': '/v1/ledger/key',
  'GET /v1/ledger/checkpoint': '/v1/ledger/checkpoint',
  'GET /v1/ledger/entries': '/v1/ledger/entries?tenant_id={A}',
  'GET /v1/ledger/proof/inclusion': '/v1/ledger/proof/inclusion?index={entA}&tree_size={size}',
  'GET /v1/ledger/proof/consistency': '/v1/ledger/proof/consistency?from=1&to={size}',
};

const READERS: TierStatuses = [200, 200, 200, 200, 403];
const ADMIN_ONLY: TierStatuses = [200, 403, 403, 403, 403];
const NONE: TierStatuses = [403, 403, 403, 403, 403];
const HIDDEN: TierStatuses = [404, 404, 404, 404, 403];

/** More requests of the same routes, in the table's columns: A's tokens under "own", B's under "other". */
// prettier-ignore
const FURTHER: [route: RouteKey, request: string, platform: number, own: TierStatuses, other: TierStatuses][] = [
  // The tenant taken from the token: each acts in its own; a platform admin must name the tenant
  // where a route acts in exactly one, and sees all otherwise.
  ['POST /v1/vms',                  '/v1/vms',                                                    400, [201, 201, 403, 403, 403], [201, 201, 403, 403, 403]],
  ['GET /v1/vms',                   '/v1/vms',                                                    200, READERS,    READERS],
  // Both tenants hold a VM named "twin": a name filter that leaked would show the other's.
  ['GET /v1/vms',                   '/v1/vms?name=twin',                                          200, READERS,    READERS],
  ['GET /v1/sessions',              '/v1/sessions',                                               400, ADMIN_ONLY, ADMIN_ONLY],
  ['GET /v1/ledger/entries',        '/v1/ledger/entries',                                         200, READERS,    READERS],
  ['GET /v1/ledger/entries',        '/v1/ledger/entries?event_type=TOKEN_ISSUED&limit=1000',      200, READERS,    READERS],
  ['GET /v1/ledger/entries',        '/v1/ledger/entries?vm_id={vmB}',                             200, READERS,    READERS],
  // A resource of A named by its id and by ?tenant_id=: B is refused for naming A.
  ['GET /v1/vms/:vm_id',            '/v1/vms/{vmA}?tenant_id={A}',                                200, READERS,    NONE],
  ['DELETE /v1/vms/:vm_id',         '/v1/vms/{vmA}?tenant_id={A}',                                204, [204, 204, 403, 403, 403], NONE],
  ['POST /v1/vms/:vm_id/start',     '/v1/vms/{vmA}/start?tenant_id={A}',                          200, [200, 200, 200, 403, 403], NONE],
  ['POST /v1/vms/:vm_id/stop',      '/v1/vms/{vmA}/stop?tenant_id={A}',                           200, [200, 200, 200, 403, 403], NONE],
  // A's session by its id alone: B gets 404, as for a missing one (a platform admin must name the tenant).
  ['DELETE /v1/sessions/:token_id', '/v1/sessions/{sesA}',                                        400, ADMIN_ONLY, [404, 403, 403, 403, 403]],
  // B revoking A's token id by B's own path revokes that id in B alone (a block B may not have seen yet).
  ['DELETE /v1/tenants/:tenant_id/tokens/:token_id', '/v1/tenants/{B}/tokens/{tokA}',             200, [404, 403, 403, 403, 403], ADMIN_ONLY],
  // Inclusion proofs of B's entries and of platform entries (no tenant).
  ['GET /v1/ledger/proof/inclusion', '/v1/ledger/proof/inclusion?index={entB}&tree_size={size}',  200, HIDDEN,     READERS],
  ['GET /v1/ledger/proof/inclusion', '/v1/ledger/proof/inclusion?index={entP}&tree_size={size}',  200, HIDDEN,     HIDDEN],
  ['GET /v1/ledger/proof/consistency', '/v1/ledger/proof/consistency?from=2&to={size}',           200, READERS,    READERS],
  // A tenant holding a VM is deleted only with ?cascade=true.
  ['DELETE /v1/tenants/:tenant_id', '/v1/tenants/{full}',                                         409, NONE,       NONE],
  ['DELETE /v1/tenants/:tenant_id', '/v1/tenants/{full}?cascade=true',                            204, NONE,       NONE],
  // Nodes by the token's tenant; a node id is unique only within its tenant, so a platform admin
  // must name the tenant (else 404), and B's tokens find no such node in B.
  ['GET /v1/nodes',                 '/v1/nodes',                                                  200, READERS,    READERS],
  ['GET /v1/nodes/:node_id',        '/v1/nodes/{nodeA}',                                          404, READERS,    HIDDEN],
  ['DELETE /v1/nodes/:node_id',     '/v1/nodes/{nodeA}',                                          404, [204, 403, 403, 403, 403], [404, 403, 403, 403, 403]],
  // A node token acts only as its own node: another node of its tenant is refused.
  ['POST /v1/nodes/:node_id/heartbeat', '/v1/nodes/{nodeA}/heartbeat',                            403, NONE,       [403, 403, 403, 403, 404]],
];

type Column = { side: 'platform'; tier: 'service:platform-admin' } | { side: 'own' | 'other'; tier: (typeof TENANT_TIERS)[number] };

type Cell = Column & { route: RouteKey; request: string; status: number };

function cellsOf(route: RouteKey, request: string, platform: number, own: TierStatuses, other: TierStatuses): Cell[] {
  return [
    { route, request, side: 'platform', tier: 'service:platform-admin', status: platform },
    ...TENANT_TIERS.map((tier, i) => ({ route, request, side: 'own' as const, tier, status: own[i]! })),
    ...TENANT_TIERS.map((tier, i) => ({ route, request, side: 'other' as const, tier, status: other[i]! })),
  ];
}

const CELLS: Cell[] = [
  ...(Object.keys(ROUTE_ACCESS) as RouteKey[]).flatMap((route) => {
    const { platform, own, other } = ROUTE_ACCESS[route];
    return cellsOf(route, REQUESTS[route], platform, own, other);
  }),
  ...FURTHER.flatMap((further) => cellsOf(...further)),
];

/** The body each route takes (`fresh` gives a new name each call); the rest take none. */
const BODIES: Partial<Record<RouteKey, (fresh: () => string) => unknown>> = {
  'POST /v1/tenants': (fresh) => ({ tenant_id: fresh(), display_name: 'Made by the matrix' }),
  'PATCH /v1/tenants/:tenant_id': (fresh) => ({ display_name: `Renamed ${fresh()}` }),
  'POST /v1/tenants/:tenant_id/tokens': () => ({ subject_pubkey: publicKeyText(generateKeyPair()), scope: 'tenant:read', expires_in_seconds: 3600 }),
  'POST /v1/vms': () => ({ disk_gb: 1 }),
  'POST /v1/nodes': (fresh) => ({ node_id: fresh(), capacity: CAPACITY }),
  'POST /v1/nodes/:node_id/heartbeat': () => ({ capacity: CAPACITY, vms: [] }),
  'PUT /v1/nodes/:node_id/vms/:vm_id/console': () => ({ data: Buffer.from('boot\n').toString('base64') }),
};

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

interface Holder {
  token: string;
  /** node:agent tokens always prove possession (SPEC §5): their requests are signed by this key. */
  signWith?: KeyObject;
}

describe('tiers: every route × platform admin and each tenant tier × own and other tenant → status', () => {
  let h: Harness;
  const signerDir = mkdtempSync(join(tmpdir(), 'ppn-ledger-'));
  const holders = {} as Record<'A' | 'B', Record<Scope, Holder>>;
  let counter = 0;
  const fresh = () => `iso-${++counter}`;

  async function holderOf(tenantId: string, scope: Scope): Promise<Holder> {
    const { token, keys } = await h.issueToken(tenantId, scope);
    return scope === 'node:agent' ? { token, signWith: keys.privateKey } : { token };
  }

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

  /** Enrolls a node in `tenantId` with a fresh key and node token; returns its id. */
  async function enrollNode(tenantId: string): Promise<string> {
    const agent = await h.issueToken(tenantId, 'node:agent');
    const nodeId = fresh();
    const res = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.keys.privateKey, body: { node_id: nodeId, capacity: CAPACITY } });
    expect(res.statusCode, res.body).toBe(201);
    return nodeId;
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

  /** Fills in the request's placeholders, making the per-cell resources it names; returns it and the tenant it acts on. */
  async function resolve(template: string): Promise<{ url: string; tenant: string }> {
    let url = template.replaceAll('{A}', A).replaceAll('{B}', B);
    let tenant = A;
    if (url.includes('{vmA}')) url = url.replace('{vmA}', await createVm(A, { stopped: url.includes('/start') }));
    if (url.includes('{vmB}')) url = url.replace('{vmB}', await createVm(B));
    url = url.replace('{nodeAgt}', AGENT_NODES.A);
    if (url.includes('{nodeA}')) url = url.replace('{nodeA}', await enrollNode(A));
    if (url.includes('{tokA}')) url = url.replace('{tokA}', (await h.issueToken(A, 'tenant:read')).tokenId);
    if (url.includes('{sesA}')) url = url.replace('{sesA}', await sessionOf(A));
    if (url.includes('{tokP}')) url = url.replace('{tokP}', (await mintPlatformToken()).row.token_id);
    if (url.includes('{empty}') || url.includes('{full}')) {
      tenant = fresh();
      await h.createTenant(tenant);
      if (url.includes('{full}')) {
        await createVm(tenant);
        await h.issueToken(tenant, 'tenant:read');
      }
      url = url.replace(/\{(empty|full)\}/, tenant);
    }
    if (url.includes('{entA}')) url = url.replace('{entA}', String(await ledgerEntryOf(A)));
    if (url.includes('{entB}')) url = url.replace('{entB}', String(await ledgerEntryOf(B)));
    if (url.includes('{entP}')) url = url.replace('{entP}', String(await ledgerEntryOf(null)));
    if (url.includes('{size}')) {
      // The size once the leader has integrated what was just sequenced (the harness runs no background work).
      await integrateEntries(h.store);
      url = url.replace('{size}', String(await h.ledgerCount()));
    }
    return { url, tenant };
  }

  /** The token a cell sends, and the tenant whose records alone it may see (null: all). */
  async function callerFor(cell: Cell, tenant: string): Promise<{ holder: Holder; sees: string | null }> {
    if (cell.side === 'platform') return { holder: { token: h.adminToken }, sees: null };
    if (cell.side === 'other') return { holder: holders.B[cell.tier], sees: B };
    return { holder: tenant === A ? holders.A[cell.tier] : await holderOf(tenant, cell.tier), sees: tenant };
  }

  beforeAll(async () => {
    initDataDir(signerDir);
    const ledgerSigner = loadLedgerSigner(signerDir);
    h = await startHarness({ app: { ledgerSigner } });
    await h.createTenant(A, BIG_LIMITS);
    await h.createTenant(B, BIG_LIMITS);
    // Both tenants hold a VM named "twin", so a name filter that leaked across tenants would show the other's.
    for (const tenant of [A, B]) {
      const twin = await h.request('POST', `/v1/vms?tenant_id=${tenant}`, { token: h.adminToken, body: { name: 'twin', disk_gb: 1 } });
      expect(twin.statusCode, twin.body).toBe(201);
    }
    for (const [name, tenantId] of [
      ['A', A],
      ['B', B],
    ] as const) {
      holders[name] = {} as Record<Scope, Holder>;
      for (const tier of TENANT_TIERS) holders[name][tier] = await holderOf(tenantId, tier);
      // Each tenant's node:agent holder is an enrolled node, so its node routes reach a node.
      const agent = holders[name]['node:agent'];
      const enrolled = await h.request('POST', '/v1/nodes', { token: agent.token, signWith: agent.signWith, body: { node_id: AGENT_NODES[name], capacity: CAPACITY } });
      expect(enrolled.statusCode, enrolled.body).toBe(201);
    }
    // So /v1/ledger/checkpoint has one to show: it holds only a tree size and a root hash.
    expect(await signPendingCheckpoint(h.store, ledgerSigner, h.clock)).not.toBeNull();
  });
  afterAll(async () => {
    await h.close();
    rmSync(signerDir, { recursive: true, force: true });
  });

  it('has a row for every route the app serves, and no row for a route it does not', () => {
    expect(servedRoutes(h.app).length).toBeGreaterThan(10);
    expect([...servedRoutes(h.app)].sort()).toEqual(Object.keys(ROUTE_ACCESS).sort());
    // /openapi.json documents the same routes, but for the four operational ones it leaves out.
    const documented = Object.entries((h.app.swagger() as { paths: Record<string, Record<string, unknown>> }).paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    expect(documented.sort()).toEqual(
      Object.keys(ROUTE_ACCESS)
        .filter((route) => route.includes(' /v1/'))
        .sort(),
    );
  });

  const named = CELLS.map((cell) => {
    const who = cell.side === 'platform' ? 'platform admin' : `${cell.tier} of the ${cell.side} tenant`;
    return [`${cell.route.split(' ')[0]} ${cell.request} as ${who} → ${cell.status}`, cell] as const;
  });

  it.each(named)('%s', async (_name, cell) => {
    const method = cell.route.split(' ')[0]!;
    const { url, tenant } = await resolve(cell.request);
    const { holder, sees } = await callerFor(cell, tenant);
    const body = BODIES[cell.route]?.(fresh);
    const before = await snapshotState(h);

    const res = await h.request(method, url, { token: holder.token, ...(body !== undefined ? { body } : {}), ...(holder.signWith ? { signWith: holder.signWith } : {}) });
    // h.request has already checked the answer is one /openapi.json lists for the operation
    // (test/support/documented-answers.ts): this matrix is where every route meets every tier.

    if (cell.status >= 400) {
      const problem = expectProblem(res, cell.status);
      expect(problem.code).toBe({ 400: 'invalid_input', 403: 'forbidden', 404: 'not_found', 409: 'conflict' }[cell.status]);
      expect(await snapshotState(h)).toEqual(before);
      return;
    }
    expect(res.statusCode, res.body).toBe(cell.status);
    // A tenant's token only ever sees (and creates in) its own tenant: never another tenant's
    // records or ledger entries, nor platform entries (tenant_id null).
    const isJson = /^application\/json/.test(String(res.headers['content-type']));
    if (sees !== null && url.startsWith('/v1/') && res.body.length > 0 && isJson) {
      const answer = res.json<Record<string, unknown>>();
      for (const tenantId of tenantIdsIn(answer)) expect(tenantId).toBe(sees);
      // An inclusion proof is for an entry of its own tenant, whose stored line it proves.
      if (typeof answer.leaf_hash === 'string') {
        const entry = await readEntryRow(h.store.db, answer.index as number);
        expect(entry?.tenantId).toBe(sees);
        expect(hashLeaf(Buffer.from(entry!.line)).toString('hex')).toBe(answer.leaf_hash);
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
