/**
 * /v1/nodes (SPEC §7, docs/design/fleet.md). Enroll, heartbeat and console upload are the node's
 * own routes: only a `node:agent` token, always with proof of possession by the node key. Reading
 * and removing nodes is for the tenant's tokens; a platform admin addresses a tenant's nodes with
 * ?tenant_id= and the shared pool without it.
 */
import { Type } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RouteDeps, TypedApp } from '../deps.js';
import { originOf, tenantScopeOf } from '../context.js';
import { callerOf } from '../plugins/auth.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { DnsLabel, Page, ResourceId, TenantId, listOf, strictQuery } from '../schemas.js';
import { CONSOLE_BYTES, enrollNode, receiveHeartbeat, removeNode, uploadConsole, type NodeCaller } from '../../control/nodes.js';
import { invalidInput, notFound } from '../../errors.js';
import { SHARED_POOL, findConsole, findNode, listNodeRows, type NodeRow } from '../../store/nodes.js';
import { findVm, listVmsOnNode, sumNodeAllocations, type VmRow } from '../../store/vms.js';

const Capacity = Type.Object(
  {
    cpus: Type.Integer({ minimum: 1, maximum: 4096 }),
    memory_mb_total: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    memory_mb_available: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
    disk_gb_available: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
    kvm: Type.Boolean(),
    load1: Type.Number({ minimum: 0, maximum: 1_000_000 }),
  },
  { additionalProperties: false },
);

const ObservedVm = Type.Object(
  {
    vm_id: ResourceId,
    state: Type.Union([Type.Literal('starting'), Type.Literal('running'), Type.Literal('stopped'), Type.Literal('failed')]),
    // The exit status and last console lines of a failed VM (≤ 1 KiB).
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

const Enroll = Type.Object({ node_id: DnsLabel, capacity: Capacity }, { additionalProperties: false });
const Heartbeat = Type.Object({ capacity: Capacity, vms: Type.Array(ObservedVm, { maxItems: 1000 }) }, { additionalProperties: false });
/** base64 of at most CONSOLE_BYTES bytes. */
const ConsoleUpload = Type.Object(
  {
    data: Type.String({
      pattern: '^[A-Za-z0-9+/]*={0,2}$',
      maxLength: Math.ceil(CONSOLE_BYTES / 3) * 4,
      description: 'standard base64 of at most the last 64 KiB of the console',
    }),
  },
  { additionalProperties: false },
);
/** A console upload is up to 64 KiB as base64 inside JSON: above the API's 64 KiB body limit. */
const CONSOLE_BODY_LIMIT_BYTES = 128 * 1024;

const NodeView = Type.Object({
  node_id: Type.String(),
  tenant_id: Type.Union([Type.String(), Type.Null()]),
  shared: Type.Boolean(),
  public_key: Type.String(),
  state: Type.String(),
  capacity: Type.Object({
    cpus: Type.Integer(),
    memory_mb_total: Type.Integer(),
    memory_mb_available: Type.Integer(),
    disk_gb_available: Type.Integer(),
    kvm: Type.Boolean(),
  }),
  allocated: Type.Object({ vms: Type.Integer(), vcpus: Type.Integer(), memory_mb: Type.Integer(), disk_gb: Type.Integer() }),
  last_heartbeat_at: Type.String(),
  enrolled_at: Type.String(),
  enrolled_by: Type.String(),
});
const NodeVmView = Type.Object({
  vm_id: Type.String(),
  tenant_id: Type.String(),
  name: Type.String(),
  state: Type.String(),
  desired_state: Type.String(),
});
const NodeDetail = Type.Intersect([NodeView, Type.Object({ vms: Type.Array(NodeVmView) })]);
const DesiredVm = Type.Object({
  vm_id: Type.String(),
  name: Type.String(),
  vcpus: Type.Integer(),
  memory_mb: Type.Integer(),
  disk_gb: Type.Integer(),
  image: Type.Union([Type.String(), Type.Null()]),
  desired_state: Type.String(),
});
const HeartbeatReply = Type.Object({ node: NodeView, heartbeat_interval_s: Type.Integer(), vms: Type.Array(DesiredVm) });
const ConsoleView = Type.Object({ vm_id: Type.String(), data: Type.String(), bytes: Type.Integer(), updated_at: Type.Union([Type.String(), Type.Null()]) });

const NodeParams = Type.Object({ node_id: DnsLabel });
const ConsoleParams = Type.Object({ node_id: DnsLabel, vm_id: ResourceId });
const VmParams = Type.Object({ vm_id: ResourceId });
const TenantQuery = strictQuery({ tenant_id: Type.Optional(TenantId) });
const ListQuery = strictQuery({ tenant_id: Type.Optional(TenantId), ...Page });

type Allocated = { vms: number; vcpus: number; memory_mb: number; disk_gb: number };

function nodeView(node: NodeRow, allocated: Allocated) {
  const shared = node.tenant_id === SHARED_POOL;
  return {
    node_id: node.node_id,
    tenant_id: shared ? null : node.tenant_id,
    shared,
    public_key: node.public_key,
    state: node.state,
    capacity: {
      cpus: node.cpus,
      memory_mb_total: node.memory_mb_total,
      memory_mb_available: node.memory_mb_available,
      disk_gb_available: node.disk_gb_available,
      kvm: node.kvm === 1,
    },
    allocated,
    last_heartbeat_at: node.last_heartbeat_at,
    enrolled_at: node.enrolled_at,
    enrolled_by: node.enrolled_by,
  };
}

/** What the placed VMs (not those pinned and still pending) hold. */
function allocatedBy(vms: readonly VmRow[]): Allocated {
  const placed = vms.filter((vm) => vm.state !== 'pending');
  const sum = (key: 'vcpus' | 'memory_mb' | 'disk_gb') => placed.reduce((total, vm) => total + vm[key], 0);
  return { vms: placed.length, vcpus: sum('vcpus'), memory_mb: sum('memory_mb'), disk_gb: sum('disk_gb') };
}

function nodeCallerOf(request: FastifyRequest): NodeCaller {
  const { token, tenant } = callerOf(request);
  return { tenantId: token.tenantId, publicKey: token.subject, tokenId: token.tokenId, vmGeneration: tenant?.vm_generation ?? null };
}

/**
 * The pool a reading or removing request addresses: a tenant token its own tenant; a platform admin
 * the tenant it names, else the shared pool (null only for a platform admin's list of every pool).
 */
function poolOf(request: FastifyRequest, named: string | undefined): string {
  return tenantScopeOf(request, named) ?? SHARED_POOL;
}

export function registerNodeRoutes(app: TypedApp, deps: RouteDeps): void {
  /** Serialised heartbeat replies by the node row they were made from; they go with their rows. */
  const replyBodies = new WeakMap<NodeRow, string>();
  app.post('/v1/nodes', { config: { scope: 'node:agent' }, schema: { body: Enroll, response: { 201: NodeView } } }, async (request, reply) => {
    const node = await enrollNode(deps, originOf(request), nodeCallerOf(request), request.body.node_id, request.body.capacity);
    return reply.code(201).send(nodeView(node, allocatedBy([])));
  });

  app.post(
    '/v1/nodes/:node_id/heartbeat',
    // Background: the heartbeat gives way to other requests between its stages (src/api/give-way.ts),
    // so a read that arrives meanwhile waits for a stage of it, not for all of it.
    { config: { scope: 'node:agent', background: true }, schema: { params: NodeParams, body: Heartbeat, response: { 200: HeartbeatReply } } },
    async (request, reply) => {
      const { capacity, vms } = request.body;
      const beat = await receiveHeartbeat(deps, originOf(request), nodeCallerOf(request), request.params.node_id, capacity, vms, deps.heartbeatIntervalS);
      // A heartbeat answered from memory returns the very node row it was last answered with (a new
      // one whenever anything in the answer changes), so that answer's bytes serve it again.
      let body = replyBodies.get(beat.node);
      if (body === undefined) {
        body = reply.serialize({ node: nodeView(beat.node, allocatedBy(beat.vms)), heartbeat_interval_s: deps.heartbeatIntervalS, vms: beat.vms }) as string;
        replyBodies.set(beat.node, body);
      }
      // Pre-serialised bytes bypass the typed reply; the route's response schema made them.
      return (reply as FastifyReply).type('application/json; charset=utf-8').send(body);
    },
  );

  app.put(
    '/v1/nodes/:node_id/vms/:vm_id/console',
    { bodyLimit: CONSOLE_BODY_LIMIT_BYTES, config: { scope: 'node:agent' }, schema: { params: ConsoleParams, body: ConsoleUpload } },
    async (request, reply) => {
      await uploadConsole(deps, nodeCallerOf(request), request.params.node_id, request.params.vm_id, Buffer.from(request.body.data, 'base64'));
      return reply.code(204).send();
    },
  );

  app.get('/v1/nodes', { config: { scope: 'tenant:read' }, schema: { querystring: ListQuery, response: { 200: listOf(NodeView) } } }, async (request) => {
    const limit = request.query.limit ?? 100;
    const pool = tenantScopeOf(request, request.query.tenant_id);
    const cursor = decodeCursor(request.query.cursor);
    const slash = cursor?.indexOf('/') ?? -1;
    if (cursor !== undefined && slash < 1) throw invalidInput('cursor', 'cursor is not one this server returned');
    const after = cursor !== undefined ? { pool: cursor.slice(0, slash), nodeId: cursor.slice(slash + 1) } : undefined;
    const rows = await listNodeRows(deps.store.db, pool, after, limit + 1);
    const page = pageOf(rows, limit, (node) => `${node.tenant_id}/${node.node_id}`);
    const allocations = new Map((await sumNodeAllocations(deps.store.db)).map((a) => [`${a.node_pool}/${a.node_id}`, a]));
    return {
      items: page.items.map((node) => {
        const a = allocations.get(`${node.tenant_id}/${node.node_id}`);
        return nodeView(node, { vms: a?.vms ?? 0, vcpus: a?.vcpus ?? 0, memory_mb: a?.memory_mb ?? 0, disk_gb: a?.disk_gb ?? 0 });
      }),
      next_cursor: page.next_cursor,
    };
  });

  app.get(
    '/v1/nodes/:node_id',
    { config: { scope: 'tenant:read' }, schema: { params: NodeParams, querystring: TenantQuery, response: { 200: NodeDetail } } },
    async (request) => {
      const pool = poolOf(request, request.query.tenant_id);
      const node = await findNode(deps.store.db, pool, request.params.node_id);
      if (!node) throw notFound('node');
      const vms = await listVmsOnNode(deps.store.db, pool, node.node_id);
      // On a shared node a tenant sees only its own VMs; only a platform admin can address one anyway.
      return { ...nodeView(node, allocatedBy(vms)), vms };
    },
  );

  app.delete('/v1/nodes/:node_id', { config: { scope: 'service:tenant-admin' }, schema: { params: NodeParams, querystring: TenantQuery } }, async (request, reply) => {
    await removeNode(deps, originOf(request), poolOf(request, request.query.tenant_id), request.params.node_id);
    return reply.code(204).send();
  });

  app.get(
    '/v1/vms/:vm_id/console',
    { config: { scope: 'tenant:read' }, schema: { params: VmParams, querystring: TenantQuery, response: { 200: ConsoleView } } },
    async (request) => {
      const vm = await findVm(deps.store.db, request.params.vm_id, tenantScopeOf(request, request.query.tenant_id));
      if (!vm) throw notFound('VM');
      const console = await findConsole(deps.store.db, vm.vm_id);
      const data = console?.data ?? '';
      return { vm_id: vm.vm_id, data, bytes: Buffer.from(data, 'base64').length, updated_at: console?.updated_at ?? null };
    },
  );
}
