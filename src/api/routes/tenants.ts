/** /v1/tenants (SPEC §4). Platform admins manage tenants; a tenant's own tokens may read it. */
import { Type } from 'typebox';
import type { RouteDeps, TypedApp } from '../deps.js';
import { assertOwnTenant, originOf } from '../context.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { Limit, Page, Tenant, TenantId, listOf, strictQuery } from '../schemas.js';
import { createTenant, deleteTenant, getTenantWithUsage, updateTenant } from '../../control/tenants.js';
import { listTenantRows, type TenantRow } from '../../store/tenants.js';
import { usageOf } from '../../store/vms.js';

const CreateTenant = Type.Object(
  {
    tenant_id: TenantId,
    display_name: Type.String({ minLength: 1, maxLength: 200 }),
    max_vms: Type.Optional(Limit.max_vms),
    storage_quota_gb: Type.Optional(Limit.storage_quota_gb),
    api_rate_limit_rpm: Type.Optional(Limit.api_rate_limit_rpm),
    max_vcpus: Type.Optional(Limit.max_vcpus),
    max_memory_mb: Type.Optional(Limit.max_memory_mb),
  },
  { additionalProperties: false },
);

const PatchTenant = Type.Object(
  {
    display_name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    max_vms: Type.Optional(Limit.max_vms),
    storage_quota_gb: Type.Optional(Limit.storage_quota_gb),
    api_rate_limit_rpm: Type.Optional(Limit.api_rate_limit_rpm),
    max_vcpus: Type.Optional(Limit.max_vcpus),
    max_memory_mb: Type.Optional(Limit.max_memory_mb),
    state: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('suspended')])),
    require_pop: Type.Optional(Type.Boolean()),
    shared_pool: Type.Optional(Type.Boolean()),
    force: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

const TenantParams = Type.Object({ tenant_id: TenantId });

/** Limits a new tenant gets when the request does not say (docs/api.md). */
export const DEFAULT_TENANT_LIMITS = { max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600, max_vcpus: null, max_memory_mb: null };

export function registerTenantRoutes(app: TypedApp, deps: RouteDeps): void {
  app.post('/v1/tenants', { config: { scope: 'service:platform-admin' }, schema: { body: CreateTenant, response: { 201: Tenant } } }, async (request, reply) => {
    const tenant = await createTenant(deps, originOf(request), { ...DEFAULT_TENANT_LIMITS, ...request.body });
    return reply.code(201).send(tenantView(tenant));
  });

  app.get(
    '/v1/tenants',
    { config: { scope: 'service:platform-admin' }, schema: { querystring: strictQuery(Page), response: { 200: listOf(Tenant) } } },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const rows = await listTenantRows(deps.store.db, decodeCursor(request.query.cursor), limit + 1);
      const page = pageOf(rows, limit, (t) => t.tenant_id);
      const items = page.items.map((t) => tenantView({ ...t, usage: usageOf(t) }));
      return { items, next_cursor: page.next_cursor };
    },
  );

  app.get('/v1/tenants/:tenant_id', { config: { scope: 'tenant:read' }, schema: { params: TenantParams, response: { 200: Tenant } } }, async (request) => {
    assertOwnTenant(request, request.params.tenant_id);
    return tenantView(await getTenantWithUsage(deps.store.db, request.params.tenant_id));
  });

  app.patch(
    '/v1/tenants/:tenant_id',
    { config: { scope: 'service:platform-admin' }, schema: { params: TenantParams, body: PatchTenant, response: { 200: Tenant } } },
    async (request) => {
      const { force, ...changes } = request.body;
      return tenantView(await updateTenant(deps, originOf(request), request.params.tenant_id, changes, force ?? false));
    },
  );

  app.delete(
    '/v1/tenants/:tenant_id',
    {
      config: { scope: 'service:platform-admin' },
      schema: { params: TenantParams, querystring: strictQuery({ cascade: Type.Optional(Type.Boolean()) }) },
    },
    async (request, reply) => {
      await deleteTenant(deps, deps.revocations, originOf(request), request.params.tenant_id, request.query.cascade ?? false);
      await deps.limiter.forget(request.params.tenant_id);
      deps.tenantMetrics.forget(request.params.tenant_id);
      return reply.code(204).send();
    },
  );
}

/** The store keeps require_pop and shared_pool as 0 or 1; the API shows booleans. */
function tenantView<T extends TenantRow>(tenant: T): Omit<T, 'require_pop' | 'shared_pool'> & { require_pop: boolean; shared_pool: boolean } {
  return { ...tenant, require_pop: tenant.require_pop === 1, shared_pool: tenant.shared_pool === 1 };
}
