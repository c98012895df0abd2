/** /v1/vms (SPEC §6). The tenant comes from the token; platform admins may name one with ?tenant_id=. */
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { RouteDeps, TypedApp } from '../deps.js';
import { originOf, requireTenantOf, tenantScopeOf } from '../context.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { DnsLabel, Page, ResourceId, TenantId, Vm, listOf } from '../schemas.js';
import { callerOf } from '../plugins/auth.js';
import { ListCache } from '../list-cache.js';
import { createVm, deleteVm, setDesiredState } from '../../control/vms.js';
import { notFound } from '../../errors.js';
import { findVm, listVmRows } from '../../store/vms.js';

const CreateVm = Type.Object(
  {
    name: Type.Optional(DnsLabel),
    vcpus: Type.Integer({ minimum: 1, maximum: 256, default: 1 }),
    memory_mb: Type.Integer({ minimum: 64, maximum: 4_194_304, default: 1024 }),
    disk_gb: Type.Integer({ minimum: 1, maximum: 65_536, default: 10 }),
    // A base image name on the node: no path separators, so it cannot reach outside the image store.
    image: Type.Optional(Type.Union([Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' }), Type.Null()])),
    node_id: Type.Optional(Type.Union([DnsLabel, Type.Null()])),
  },
  { additionalProperties: false },
);

const TenantQuery = Type.Object({ tenant_id: Type.Optional(TenantId) });
const VmParams = Type.Object({ vm_id: ResourceId });

export function registerVmRoutes(app: TypedApp, deps: RouteDeps): void {
  const listCache = new ListCache();
  app.post(
    '/v1/vms',
    { config: { scope: 'tenant:input' }, schema: { querystring: TenantQuery, body: CreateVm, response: { 201: Vm } } },
    async (request, reply) => {
      const tenantId = requireTenantOf(request, request.query.tenant_id);
      const body = request.body;
      const vm = await createVm(
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
        callerOf(request).token.tokenId,
      );
      return reply.code(201).send(vm);
    },
  );

  app.get(
    '/v1/vms',
    {
      config: { scope: 'tenant:read' },
      schema: { querystring: Type.Object({ ...TenantQuery.properties, ...Page }), response: { 200: listOf(Vm) } },
    },
    async (request, reply) => {
      const limit = request.query.limit ?? 100;
      const tenantId = tenantScopeOf(request, request.query.tenant_id);
      const after = decodeCursor(request.query.cursor);
      // Tenant tokens' pages are cached by the tenant's vm_generation, read by auth on this request.
      const tenant = callerOf(request).tenant;
      const pageKey = `${limit}:${after ?? ''}`;
      const cached = tenant ? listCache.get(tenant.tenant_id, tenant.vm_generation, pageKey) : undefined;
      // Pre-serialised bytes bypass the typed reply; the route's response schema made them.
      const raw = reply as FastifyReply;
      if (cached !== undefined) return raw.type('application/json; charset=utf-8').send(cached);
      const rows = await listVmRows(deps.store.db, tenantId, after, limit + 1);
      const body = reply.serialize(pageOf(rows, limit, (vm) => vm.vm_id)) as string;
      if (tenant) listCache.set(tenant.tenant_id, tenant.vm_generation, pageKey, body);
      return raw.type('application/json; charset=utf-8').send(body);
    },
  );

  app.get(
    '/v1/vms/:vm_id',
    { config: { scope: 'tenant:read' }, schema: { params: VmParams, querystring: TenantQuery, response: { 200: Vm } } },
    async (request) => {
      const vm = await findVm(deps.store.db, request.params.vm_id, tenantScopeOf(request, request.query.tenant_id));
      if (!vm) throw notFound('VM');
      return vm;
    },
  );

  app.delete(
    '/v1/vms/:vm_id',
    { config: { scope: 'tenant:input' }, schema: { params: VmParams, querystring: TenantQuery } },
    async (request, reply) => {
      await deleteVm(deps, originOf(request), tenantScopeOf(request, request.query.tenant_id), request.params.vm_id);
      return reply.code(204).send();
    },
  );

  for (const [action, desired] of [
    ['start', 'running'],
    ['stop', 'stopped'],
  ] as const) {
    app.post(
      `/v1/vms/:vm_id/${action}`,
      { config: { scope: 'tenant:user' }, schema: { params: VmParams, querystring: TenantQuery, response: { 200: Vm } } },
      async (request) =>
        setDesiredState(deps, originOf(request), tenantScopeOf(request, request.query.tenant_id), request.params.vm_id, desired),
    );
  }
}
