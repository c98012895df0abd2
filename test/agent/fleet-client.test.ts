/**
 * The heartbeat reply decides which VMs the node destroys, so one that is not exactly the agreed
 * shape is refused whole (a `bad_reply` AgentError), never acted on in part.
 */
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../src/agent/error.js';
import { parseHeartbeatReply } from '../../src/agent/fleet-client.js';

const vm = { vm_id: 'vm-1', name: 'web', vcpus: 2, memory_mb: 512, disk_gb: 10, image: 'debian.qcow2', desired_state: 'running' };
const reply = (vms: unknown[], extra: Record<string, unknown> = {}) => ({ node: { node_id: 'n1' }, heartbeat_interval_s: 10, vms, ...extra });

describe('parseHeartbeatReply', () => {
  it('reads the interval and every desired VM, ignoring fields it does not use', () => {
    const parsed = parseHeartbeatReply(
      reply([
        { ...vm, state: 'scheduled' },
        { ...vm, vm_id: 'vm-2', image: null, desired_state: 'deleted' },
      ]),
    );
    expect(parsed.heartbeat_interval_s).toBe(10);
    expect(parsed.vms).toEqual([vm, { ...vm, vm_id: 'vm-2', image: null, desired_state: 'deleted' }]);
  });

  it.each([
    ['not an object', 'ok'],
    ['no interval', { vms: [] }],
    ['a zero interval', reply([], { heartbeat_interval_s: 0 })],
    ['vms not a list', reply([], { vms: {} })],
    ['a VM without vm_id', reply([{ ...vm, vm_id: undefined }])],
    ['a VM with fractional vcpus', reply([vm, { ...vm, vm_id: 'vm-2', vcpus: 1.5 }])],
    ['a VM with a numeric image', reply([{ ...vm, image: 7 }])],
    ['a VM with an unknown desired_state', reply([{ ...vm, desired_state: 'paused' }])],
  ])('refuses a reply with %s, whole', (_what, body) => {
    let thrown: unknown;
    try {
      parseHeartbeatReply(body);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AgentError);
    expect((thrown as AgentError).code).toBe('bad_reply');
    expect((thrown as AgentError).message).toMatch(/nothing was changed$/);
  });
});
