/**
 * /v1/nodes (SPEC §7, docs/design/fleet.md). Enroll, heartbeat and console upload are the node's
 * own routes: only a `node:agent` token, always with proof of possession by the node key. Reading
 * and removing nodes is for the tenant's tokens; a platform admin addresses a tenant's nodes with
 * ?tenant_id= and the shared pool without it.
 */
import { Type, type Static } from 'typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RouteDeps, TypedApp } from '../deps.js';
import { originOf, tenantScopeOf } from '../context.js';
import { callerOf, type Caller } from '../plugins/auth.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { Page, ResourceId, TenantId, listOf, strictQuery } from '../schemas.js';
import type { Origin } from '../../control/context.js';
import { enrollNode, receiveHeartbeat, removeNode, uploadConsole, type Capacity, type NodeCaller, type ObservedVm } from '../../control/nodes.js';
import { CONSOLE_BODY_LIMIT_BYTES, ConsoleParams, ConsoleUpload, Enroll, Heartbeat, HeartbeatReply, NodeParams, NodeView } from './agent-schemas.js';
import { invalidInput, notFound } from '../../errors.js';
import { SHARED_POOL, findConsole, findNode, listNodeRows, type NodeRow } from '../../store/nodes.js';
import { findVm, listVmsOnNode, sumNodeAllocations, type VmRow } from '../../store/vms.js';

const NodeVmView = Type.Object({
  vm_id: Type.String(),
  tenant_id: Type.String(),
  name: Type.String(),
  state: Type.String(),
  desired_state: Type.String(),
});
export const NodeDetail = Type.Intersect([NodeView, Type.Object({ vms: Type.Array(NodeVmView) })]);
const ConsoleView = Type.Object({ vm_id: Type.String(), data: Type.String(), bytes: Type.Integer(), updated_at: Type.Union([Type.String(), Type.Null()]) });

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

/** A VM the node should run, in the order of DesiredVm's fields. */
function desiredVmView(vm: VmRow) {
  return { vm_id: vm.vm_id, name: vm.name, vcpus: vm.vcpus, memory_mb: vm.memory_mb, disk_gb: vm.disk_gb, image: vm.image, desired_state: vm.desired_state };
}

export function nodeCallerOf({ token, tenant }: Caller): NodeCaller {
  return { tenantId: token.tenantId, publicKey: token.subject, tokenId: token.tokenId, vmGeneration: tenant?.vm_generation ?? null };
}

/**
 * The node's own routes as answers, whichever port the request came in on: the API's routes below
 * and the agent listener's (src/api/agent-listener/answer.ts) call these, with the caller admitted.
 */
export interface NodeAnswers {
  /** The enrolled node's view (201). */
  enroll(origin: Origin, caller: Caller, body: { node_id: string; capacity: Capacity }): Promise<Static<typeof NodeView>>;
  /** The heartbeat's reply as JSON text (200). */
  heartbeat(origin: Origin, caller: Caller, nodeId: string, body: { capacity: Capacity; vms: ObservedVm[] }): Promise<string>;
  /** Stores the console's last bytes (204). */
  uploadConsole(caller: Caller, nodeId: string, vmId: string, body: { data: string }): Promise<void>;
}

export function nodeAnswers(deps: RouteDeps): NodeAnswers {
  /** Serialised heartbeat replies by the node row they were made from; they go with their rows. */
  const replyBodies = new WeakMap<NodeRow, string>();
  return {
    async enroll(origin, caller, body) {
      const node = await enrollNode(deps, origin, nodeCallerOf(caller), body.node_id, body.capacity);
      return nodeView(node, allocatedBy([]));
    },
    async heartbeat(origin, caller, nodeId, { capacity, vms }) {
      const beat = await receiveHeartbeat(deps, origin, nodeCallerOf(caller), nodeId, capacity, vms, deps.heartbeatIntervalS);
      // A heartbeat answered from memory returns the very node row it was last answered with (a new
      // one whenever anything in the answer changes), so that answer's bytes serve it again.
      let text = replyBodies.get(beat.node);
      if (text === undefined) {
        // Each view lists HeartbeatReply's fields in its order, so this is the text its serializer makes.
        const reply = { node: nodeView(beat.node, allocatedBy(beat.vms)), heartbeat_interval_s: deps.heartbeatIntervalS, vms: beat.vms.map(desiredVmView) };
        text = JSON.stringify(reply);
        replyBodies.set(beat.node, text);
      }
      return text;
    },
    async uploadConsole(caller, nodeId, vmId, body) {
      await uploadConsole(deps, nodeCallerOf(caller), nodeId, vmId, Buffer.from(body.data, 'base64'));
    },
  };
}

/**
 * The pool a reading or removing request addresses: a tenant token its own tenant; a platform admin
 * the tenant it names, else the shared pool (null only for a platform admin's list of every pool).
 */
function poolOf(request: FastifyRequest, named: string | undefined): string {
  return tenantScopeOf(request, named) ?? SHARED_POOL;
}

export function registerNodeRoutes(app: TypedApp, deps: RouteDeps): NodeAnswers {
  const answers = nodeAnswers(deps);
  app.post('/v1/nodes', { config: { scope: 'node:agent' }, schema: { body: Enroll, response: { 201: NodeView } } }, async (request, reply) => {
    return reply.code(201).send(await answers.enroll(originOf(request), callerOf(request), request.body));
  });

  app.post(
    '/v1/nodes/:node_id/heartbeat',
    // Background: the heartbeat gives way to other requests between its stages (src/api/give-way.ts),
    // so a read that arrives meanwhile waits for a stage of it, not for all of it.
    { config: { scope: 'node:agent', background: true }, schema: { params: NodeParams, body: Heartbeat, response: { 200: HeartbeatReply } } },
    async (request, reply) => {
      const text = await answers.heartbeat(originOf(request), callerOf(request), request.params.node_id, request.body);
      // Pre-serialised bytes bypass the typed reply; the route's response schema describes them.
      return (reply as FastifyReply).type('application/json; charset=utf-8').send(text);
    },
  );

  app.put(
    '/v1/nodes/:node_id/vms/:vm_id/console',
    { bodyLimit: CONSOLE_BODY_LIMIT_BYTES, config: { scope: 'node:agent' }, schema: { params: ConsoleParams, body: ConsoleUpload } },
    async (request, reply) => {
      await answers.uploadConsole(callerOf(request), request.params.node_id, request.params.vm_id, request.body);
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
  return answers;
}
