/**
 * Who may call each route: SPEC §5's tiers applied to every route the API serves, as one table.
 *
 * Each row gives the scope a route needs, which is what the server enforces (buildApp gives every
 * route its `config.scope` from here, and src/api/plugins/auth.ts checks it), and the answer each
 * tier gets, acting on its own tenant and on another tenant's. test/api/isolation.test.ts sends
 * every one of those requests through the real app with real tokens and expects exactly these
 * statuses, and that every refused one changes nothing.
 *
 * Adding a route:
 *   1. Add its row below, keyed "METHOD /url" exactly as the route file registers it (Fastify's
 *      `:param` form). The server takes the route's scope from its row; the route file may say it
 *      too, in `config: { scope }`, for its reader. An app with a route that has no row, or whose
 *      route names a scope other than its row's, refuses to build.
 *   2. Fill in the answers. The platform admin belongs to no tenant, so it has one column. "own" is a
 *      token of the tenant the request acts on; "other" is a token of another tenant sending the same
 *      request. A resource of another tenant named in the path answers 404, exactly as a missing
 *      one (SPEC §3); naming another tenant in `?tenant_id=` answers 403; a scope check refuses with
 *      403 before the route looks at anything.
 *   3. Give the route its request in test/api/isolation.test.ts (REQUESTS: the type checker asks
 *      for one per row), so the matrix can send it.
 *   4. Add its line to the tier table in docs/api.md ("Tiers: who may call each route"); a test
 *      checks that the two agree.
 */
import type { FastifyInstance } from 'fastify';
import type { Scope } from '../../tokens/scopes.js';

/**
 * What a route asks of the caller: a scope (held or implied, src/tokens/scopes.ts);
 * 'authenticated', any valid token; 'optional', none needed but one sent is checked and becomes the
 * caller; 'public', no token looked at.
 */
export type RouteScope = Scope | 'authenticated' | 'optional' | 'public';

/** The tenant tiers in the order of a row's `own` and `other` columns. */
export const TENANT_TIERS = ['service:tenant-admin', 'tenant:input', 'tenant:user', 'tenant:read', 'node:agent'] as const;

/** HTTP statuses, one per tenant tier, in TENANT_TIERS order. */
export type TierStatuses = readonly [admin: number, input: number, user: number, read: number, agent: number];

export interface RouteAccess {
  scope: RouteScope;
  /** What a platform-admin token gets. */
  platform: number;
  /** What each tenant tier gets acting on its own tenant. */
  own: TierStatuses;
  /** What each tenant tier gets sending the same request about another tenant's resource. */
  other: TierStatuses;
}

const row = (scope: RouteScope, platform: number, own: TierStatuses, other: TierStatuses): RouteAccess => ({ scope, platform, own, other });
const ALL_200: TierStatuses = [200, 200, 200, 200, 200];
const NONE: TierStatuses = [403, 403, 403, 403, 403];
/** tenant:read and above; node:agent implies no user scope. */
const READERS: TierStatuses = [200, 200, 200, 200, 403];
/** Any token but a node's. */
const NOT_AGENT: TierStatuses = [200, 200, 200, 200, 403];

// prettier-ignore
export const ROUTE_ACCESS = {
  //                                              scope                     platform  own tenant                  other tenant
  //                                                                                  admin input user read agent  admin input user read agent
  'GET /healthz':                                row('public',                 200, ALL_200,                   ALL_200),
  'GET /readyz':                                 row('public',                 200, ALL_200,                   ALL_200),
  'GET /openapi.json':                           row('public',                 200, ALL_200,                   ALL_200),
  'GET /v1/version':                             row('public',                 200, ALL_200,                   ALL_200),
  // A node:agent token may call nothing but its node's own routes (below), so not /metrics either.
  'GET /metrics':                                row('optional',               200, NOT_AGENT,                 NOT_AGENT),
  // The web console's static files (src/api/console.ts): the page asks nothing; its API calls do.
  'GET /console':                                row('public',                 200, ALL_200,                   ALL_200),
  'GET /console/*':                              row('public',                 200, ALL_200,                   ALL_200),

  'POST /v1/tenants':                            row('service:platform-admin', 201, NONE,                      NONE),
  'GET /v1/tenants':                             row('service:platform-admin', 200, NONE,                      NONE),
  'GET /v1/tenants/:tenant_id':                  row('tenant:read',            200, READERS,                   [404, 404, 404, 404, 403]),
  'PATCH /v1/tenants/:tenant_id':                row('service:platform-admin', 200, NONE,                      NONE),
  'DELETE /v1/tenants/:tenant_id':               row('service:platform-admin', 204, NONE,                      NONE),

  'POST /v1/tenants/:tenant_id/tokens':          row('service:tenant-admin',   201, [201, 403, 403, 403, 403], [404, 403, 403, 403, 403]),
  'GET /v1/tenants/:tenant_id/tokens':           row('service:tenant-admin',   200, [200, 403, 403, 403, 403], [404, 403, 403, 403, 403]),
  'DELETE /v1/tenants/:tenant_id/tokens/:token_id': row('service:tenant-admin', 200, [200, 403, 403, 403, 403], [404, 403, 403, 403, 403]),
  'GET /v1/admin/tokens':                        row('service:platform-admin', 200, NONE,                      NONE),
  'DELETE /v1/admin/tokens/:token_id':           row('service:platform-admin', 200, NONE,                      NONE),
  'GET /v1/admin/keys':                          row('service:platform-admin', 200, NONE,                      NONE),
  'GET /v1/whoami':                              row('authenticated',          200, NOT_AGENT,                 NOT_AGENT),

  'GET /v1/sessions':                            row('service:tenant-admin',   200, [200, 403, 403, 403, 403], NONE),
  'DELETE /v1/sessions/:token_id':               row('service:tenant-admin',   200, [200, 403, 403, 403, 403], NONE),

  'POST /v1/vms':                                row('tenant:input',           201, [201, 201, 403, 403, 403], NONE),
  'GET /v1/vms':                                 row('tenant:read',            200, READERS,                   NONE),
  'GET /v1/vms/:vm_id':                          row('tenant:read',            200, READERS,                   [404, 404, 404, 404, 403]),
  'DELETE /v1/vms/:vm_id':                       row('tenant:input',           204, [204, 204, 403, 403, 403], [404, 404, 403, 403, 403]),
  'POST /v1/vms/:vm_id/start':                   row('tenant:user',            200, [200, 200, 200, 403, 403], [404, 404, 404, 403, 403]),
  'POST /v1/vms/:vm_id/stop':                    row('tenant:user',            200, [200, 200, 200, 403, 403], [404, 404, 404, 403, 403]),
  'GET /v1/vms/:vm_id/console':                  row('tenant:read',            200, READERS,                   [404, 404, 404, 404, 403]),

  // A node's own routes take node:agent tokens only, each acting as its own node: the tenant admin's
  // implied node:agent is for issuing node tokens, not for acting as one. Enrolling again with a key
  // that has enrolled is a conflict; another tenant's node id names no node of the caller's tenant.
  'POST /v1/nodes':                              row('node:agent',             403, [403, 403, 403, 403, 409], [403, 403, 403, 403, 409]),
  'POST /v1/nodes/:node_id/heartbeat':           row('node:agent',             403, [403, 403, 403, 403, 200], [403, 403, 403, 403, 404]),
  // The VM is not placed on the node: a node reports and uploads only for its own VMs.
  'PUT /v1/nodes/:node_id/vms/:vm_id/console':   row('node:agent',             403, [403, 403, 403, 403, 404], [403, 403, 403, 403, 404]),
  'GET /v1/nodes':                               row('tenant:read',            200, READERS,                   NONE),
  'GET /v1/nodes/:node_id':                      row('tenant:read',            200, READERS,                   NONE),
  'DELETE /v1/nodes/:node_id':                   row('service:tenant-admin',   204, [204, 403, 403, 403, 403], NONE),

  'GET /v1/ledger/key':                          row('public',                 200, ALL_200,                   ALL_200),
  // A checkpoint and a consistency proof hold only tree sizes and hashes: any reader of any tenant.
  'GET /v1/ledger/checkpoint':                   row('tenant:read',            200, READERS,                   READERS),
  'GET /v1/ledger/entries':                      row('tenant:read',            200, READERS,                   NONE),
  'GET /v1/ledger/proof/inclusion':              row('tenant:read',            200, READERS,                   [404, 404, 404, 404, 403]),
  'GET /v1/ledger/proof/consistency':            row('tenant:read',            200, READERS,                   READERS),
} as const satisfies Record<string, RouteAccess>;

export type RouteKey = keyof typeof ROUTE_ACCESS;

const served = new WeakMap<FastifyInstance, string[]>();

/** Every route `app` registered ("METHOD /url", HEAD routes left out), in registration order. */
export function servedRoutes(app: FastifyInstance): string[] {
  return [...(served.get(app) ?? [])];
}

/**
 * Gives each route registered on `app` from now on its scope from ROUTE_ACCESS, refusing a route
 * with no row (so no route is ever public by omission) or whose own `config.scope` disagrees. HEAD
 * routes, which Fastify adds beside each GET, take the GET row: they answer the same. Call the
 * returned function once the API's routes are in: a route added later (the benchmark's bare
 * baseline) is not the API's and is left as it is.
 */
export function takeScopesFromAccessTable(app: FastifyInstance): () => void {
  let open = true;
  const routes: string[] = [];
  served.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      const key = `${method === 'HEAD' ? 'GET' : method} ${route.url}`;
      if (method !== 'HEAD') routes.push(key);
      if (!open) continue;
      const access = (ROUTE_ACCESS as Record<string, RouteAccess>)[key];
      if (!access) throw new TypeError(`${key} has no row in src/api/routes/access.ts: add one (its header says how)`);
      const scope = access.scope === 'public' ? undefined : access.scope;
      if (route.config?.scope !== undefined && route.config.scope !== scope) {
        throw new TypeError(`${key} says config.scope ${route.config.scope}, but its row in src/api/routes/access.ts says ${access.scope}`);
      }
      route.config = { ...route.config, scope };
    }
  });
  return () => {
    open = false;
  };
}
