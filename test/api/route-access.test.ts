/**
 * The route table's access rows (src/api/routes/access.ts) are what the server enforces: a route
 * cannot be added without its row, cannot name a scope its row does not, and the HEAD twin of every
 * GET route asks what the GET asks. test/api/isolation.test.ts runs every row's cells.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTE_ACCESS, servedRoutes, takeScopesFromAccessTable } from '../../src/api/routes/access.js';
import { startHarness, type Harness } from '../support/harness.js';
import { expectProblem } from './expectations.js';

describe('the access table decides every route', () => {
  it('an app with a route that has no row refuses to build, naming the route and the table', () => {
    const app = Fastify();
    takeScopesFromAccessTable(app);
    expect(() => app.get('/v1/unlisted', async () => ({}))).toThrow(/^GET \/v1\/unlisted has no row in src\/api\/routes\/access\.ts/);
    expect(() => app.post('/v1/whoami', async () => ({}))).toThrow(/^POST \/v1\/whoami has no row/);
  });

  it('a route that names a scope other than its row refuses to build', () => {
    const app = Fastify();
    takeScopesFromAccessTable(app);
    expect(() => app.get('/v1/tenants', { config: { scope: 'tenant:read' } }, async () => ({}))).toThrow(
      'GET /v1/tenants says config.scope tenant:read, but its row in src/api/routes/access.ts says service:platform-admin',
    );
    expect(() => app.get('/healthz', { config: { scope: 'authenticated' } }, async () => ({}))).toThrow(/its row .* says public/);
  });

  it("a route takes its row's scope whether or not it names it, and a public row's route has none", async () => {
    const app = Fastify();
    takeScopesFromAccessTable(app);
    const scopeOf = async (url: string) => (await app.inject({ url })).json<{ scope: string | null }>().scope;
    const answer = async (request: { routeOptions: { config: { scope?: string } } }) => ({ scope: request.routeOptions.config.scope ?? null });
    app.get('/v1/tenants', answer);
    app.get('/v1/vms', { config: { scope: 'tenant:read' } }, answer);
    app.get('/healthz', answer);
    expect(await scopeOf('/v1/tenants')).toBe('service:platform-admin');
    expect(await scopeOf('/v1/vms')).toBe('tenant:read');
    expect(await scopeOf('/healthz')).toBeNull();
    expect(servedRoutes(app)).toEqual(['GET /v1/tenants', 'GET /v1/vms', 'GET /healthz']);
  });

  it('a route added once the table is closed (the benchmark baseline) is left as it is', async () => {
    const app = Fastify();
    takeScopesFromAccessTable(app)();
    app.get('/bench/bare', async (request) => ({ scope: request.routeOptions.config.scope ?? null }));
    expect((await app.inject({ url: '/bench/bare' })).json()).toEqual({ scope: null });
  });
});

describe('HEAD asks what GET asks', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant('tenant-a');
  });
  afterAll(async () => {
    await h.close();
  });

  const PARAMS: Record<string, string> = { tenant_id: 'tenant-a', vm_id: 'vm-00000000000000000000000000', token_id: 'tok-00000000000000000000000000' };
  const gets = Object.entries(ROUTE_ACCESS)
    .filter(([route]) => route.startsWith('GET '))
    .map(([route, access]) => [route.slice(4).replace(/:(\w+)/g, (_, name: string) => PARAMS[name]!), access.scope] as const);

  it.each(gets.filter(([, scope]) => scope !== 'public' && scope !== 'optional'))('HEAD %s without a token → 401, as its GET', async (url) => {
    const res = await h.request('HEAD', url);
    expect(res.statusCode).toBe(401);
    expectProblem(await h.request('GET', url), 401);
  });

  it.each(gets.filter(([, scope]) => scope === 'service:platform-admin'))('HEAD %s with a tenant admin token → 403, as its GET', async (url) => {
    const { token } = await h.issueToken('tenant-a', 'service:tenant-admin');
    expect((await h.request('HEAD', url, { token })).statusCode).toBe(403);
    expectProblem(await h.request('GET', url, { token }), 403);
  });
});

describe('docs/api.md', () => {
  it("has the tier table's row for every route, saying what the access table says", () => {
    const docs = readFileSync('docs/api.md', 'utf8');
    const section = docs.slice(docs.indexOf('### Tiers: who may call each route'));
    const documented = section
      .slice(0, section.indexOf('\n\n', section.indexOf('| route |')))
      .split('\n')
      .filter((line) => line.startsWith('| `'));
    const scopeText: Record<string, string> = { public: 'none', optional: 'none (a token sent is checked)', authenticated: 'any valid token' };
    // 403 is the refusal of the tier; any other answer (a 404 or 409 included) comes from the route itself.
    const mark = (status: number) => (status === 403 ? '—' : 'yes');
    const expected = Object.entries(ROUTE_ACCESS).map(([route, access]) => {
      const own = access.own as readonly number[];
      const other = access.other as readonly number[];
      const refused = [...new Set(other.filter((_, i) => own[i]! !== 403))];
      const elsewhere = own.every((s) => s === 403) ? '—' : other.every((s, i) => s === own[i]) ? 'same' : refused.join('/');
      const cells = [`\`${route.replace(/:(\w+)/g, '{$1}')}\``, scopeText[access.scope] ?? `\`${access.scope}\``, mark(access.platform), ...own.map(mark), elsewhere];
      return `| ${cells.join(' | ')} |`;
    });
    expect(documented).toEqual(expected);
  });
});
