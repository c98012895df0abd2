/** /v1/vms (SPEC §6). The tenant comes from the token; platform admins may name one with ?tenant_id=. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { RouteDeps, TypedApp } from '../deps.js';
import { originOf, requireTenantOf, tenantScopeOf } from '../context.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { DnsLabel, Page, ResourceId, TenantId, Vm, listOf, strictQuery } from '../schemas.js';
import { callerOf } from '../plugins/auth.js';
import { ListCache } from '../list-cache.js';
import { createVm, deleteVm, setDesiredState, type Creator } from '../../control/vms.js';
import { PpnError, notFound } from '../../errors.js';
import { findVm, listVmRows } from '../../store/vms.js';

const CreateVm = Type.Object(
  {
    name: Type.Optional(DnsLabel),
    vcpus: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
    memory_mb: Type.Integer({ minimum: 64, maximum: 4_194_304, default: 1024 }),
    disk_gb: Type.Integer({ minimum: 1, maximum: 65_536, default: 10 }),
    // A base image name on the node: no path separators, so it cannot reach outside the image store.
    image: Type.Optional(
      Type.Union([
        Type.String({
          pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$',
          description: "an image name: 1 to 128 letters, digits, '.', '_' and '-', starting with a letter or digit (no path separators)",
        }),
        Type.Null(),
      ]),
    ),
    node_id: Type.Optional(Type.Union([DnsLabel, Type.Null()])),
  },
  { additionalProperties: false },
);

const TenantQuery = strictQuery({ tenant_id: Type.Optional(TenantId) });
const ListQuery = strictQuery({
  tenant_id: Type.Optional(TenantId),
  // Only the VM of this name: names are unique within a tenant, so a tenant token gets at most one.
  name: Type.Optional(DnsLabel),
  ...Page,
});
const VmParams = Type.Object({ vm_id: ResourceId });

/** Counts a quota refusal against the tenant on /metrics (src/api/metrics.ts), then passes it on. */
async function countQuotaRefusal<T>(deps: RouteDeps, tenantId: string, creating: Promise<T>): Promise<T> {
  try {
    return await creating;
  } catch (error) {
    if (error instanceof PpnError && error.code === 'quota_exceeded') deps.tenantMetrics.quotaRefused(tenantId);
    throw error;
  }
}

/**
 * The token a create runs under. A tenant token's chain is counted against its blocks' limits; a
 * platform admin acting in a tenant is not one of its blocks, so only its id is recorded.
 */
function creatorOf(request: FastifyRequest): Creator {
  const { token } = callerOf(request);
  return { tokenId: token.tokenId, chain: token.tenantId === null ? [] : token.chain };
}

export function registerVmRoutes(app: TypedApp, deps: RouteDeps): void {
  const listCache = new ListCache();
  app.post('/v1/vms', { config: { scope: 'tenant:input' }, schema: { querystring: TenantQuery, body: CreateVm, response: { 201: Vm } } }, async (request, reply) => {
    const tenantId = requireTenantOf(request, request.query.tenant_id);
    const body = request.body;
    const vm = await countQuotaRefusal(
      deps,
      tenantId,
      createVm(
        deps,
        originOf(request),
        tenantId,
        {
          name: body.name ?? null,
          vcpus: body.vcpus,
          memory_mb: body.memory_mb,
          disk_gb: body.disk_gb,
          image: body.image ?? null,
          node_id: body.node_id ?? null,
        },
        creatorOf(request),
      ),
    );
    return reply.code(201).send(vm);
  });

  app.get(
    '/v1/vms',
    {
      config: { scope: 'tenant:read' },
      schema: { querystring: ListQuery, response: { 200: listOf(Vm) } },
    },
    async (request, reply) => {
      const limit = request.query.limit ?? 100;
      const tenantId = tenantScopeOf(request, request.query.tenant_id);
      const after = decodeCursor(request.query.cursor);
      const name = request.query.name;
      // Tenant tokens' pages are cached by the tenant's vm_generation, read by auth on this request.
      const tenant = callerOf(request).tenant;
      const pageKey = `${limit}:${after ?? ''}:${name ?? ''}`;
      const cached = tenant ? listCache.get(tenant.tenant_id, tenant.vm_generation, pageKey) : undefined;
      // Pre-serialised bytes bypass the typed reply; the route's response schema made them.
      const raw = reply as FastifyReply;
      if (cached !== undefined) return raw.type('application/json; charset=utf-8').send(cached);
      const rows = await listVmRows(deps.store.db, tenantId, after, limit + 1, name);
      const body = reply.serialize(pageOf(rows, limit, (vm) => vm.vm_id)) as string;
      if (tenant) listCache.set(tenant.tenant_id, tenant.vm_generation, pageKey, body);
      return raw.type('application/json; charset=utf-8').send(body);
    },
  );

  app.get('/v1/vms/:vm_id', { config: { scope: 'tenant:read' }, schema: { params: VmParams, querystring: TenantQuery, response: { 200: Vm } } }, async (request) => {
    const vm = await findVm(deps.store.db, request.params.vm_id, tenantScopeOf(request, request.query.tenant_id));
    if (!vm) throw notFound('VM');
    return vm;
  });

  app.delete(
    '/v1/vms/:vm_id',
    { config: { scope: 'tenant:input' }, schema: { params: VmParams, querystring: TenantQuery, response: { 202: Vm, 204: Type.Null() } } },
    async (request, reply) => {
      // A VM on a node is gone only once its node has destroyed it: 202 with the VM, now `deleting`.
      const deleting = await deleteVm(deps, originOf(request), tenantScopeOf(request, request.query.tenant_id), request.params.vm_id);
      return deleting ? reply.code(202).send(deleting) : reply.code(204).send(null);
    },
  );

  for (const [action, desired] of [
    ['start', 'running'],
    ['stop', 'stopped'],
  ] as const) {
    app.post(
      `/v1/vms/:vm_id/${action}`,
      { config: { scope: 'tenant:user' }, schema: { params: VmParams, querystring: TenantQuery, response: { 200: Vm } } },
      async (request) => setDesiredState(deps, originOf(request), tenantScopeOf(request, request.query.tenant_id), request.params.vm_id, desired),
    );
  }
}
