/**
 * The bodies a fleet node sends (SPEC §7) and the answers it gets: one definition for both ports that
 * serve the node's routes, the API's (src/api/routes/nodes.ts) and the agent listener's
 * (src/api/agent-listener/worker.ts).
 */
import { Type } from 'typebox';
import { CONSOLE_BYTES } from '../../control/nodes.js';
import { DnsLabel, ResourceId } from '../schemas.js';

export const Capacity = Type.Object(
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

export const ObservedVm = Type.Object(
  {
    vm_id: ResourceId,
    state: Type.Union([Type.Literal('starting'), Type.Literal('running'), Type.Literal('stopped'), Type.Literal('failed')]),
    // The exit status and last console lines of a failed VM (≤ 1 KiB).
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false },
);

export const Enroll = Type.Object({ node_id: DnsLabel, capacity: Capacity }, { additionalProperties: false });
export const Heartbeat = Type.Object({ capacity: Capacity, vms: Type.Array(ObservedVm, { maxItems: 1000 }) }, { additionalProperties: false });
/** base64 of at most CONSOLE_BYTES bytes. */
export const ConsoleUpload = Type.Object(
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
export const CONSOLE_BODY_LIMIT_BYTES = 128 * 1024;

export const NodeView = Type.Object({
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
export const DesiredVm = Type.Object({
  vm_id: Type.String(),
  name: Type.String(),
  vcpus: Type.Integer(),
  memory_mb: Type.Integer(),
  disk_gb: Type.Integer(),
  image: Type.Union([Type.String(), Type.Null()]),
  desired_state: Type.String(),
});
export const HeartbeatReply = Type.Object({ node: NodeView, heartbeat_interval_s: Type.Integer(), vms: Type.Array(DesiredVm) });
export const NodeParams = Type.Object({ node_id: DnsLabel });
export const ConsoleParams = Type.Object({ node_id: DnsLabel, vm_id: ResourceId });
