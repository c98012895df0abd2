/**
 * `service-vm-host run`: the agent's loop. Each turn reads the capacity and what every VM is doing,
 * sends them in a heartbeat, reconciles towards the reply's desired list, and uploads the console of
 * each VM whose console file changed since its last upload. A failed heartbeat changes nothing on
 * the node: its VMs keep running as they were until the server answers again.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { readCapacity } from './capacity.js';
import { AgentError } from './error.js';
import type { FleetClient } from './fleet-client.js';
import type { QemuDriver } from './qemu.js';
import type { ReconcileLog, Reconciler } from './reconcile.js';

export const DEFAULT_HEARTBEAT_INTERVAL_S = 10;

export interface HeartbeatLoopOptions {
  stateDir: string;
  nodeId: string;
  client: FleetClient;
  driver: QemuDriver;
  reconciler: Reconciler;
  log: ReconcileLog & { error(fields: Record<string, unknown>, message: string): void };
  /** Seconds between heartbeats; by default what the server's reply asks for. */
  intervalS?: number | undefined;
  /** Ends the loop (SIGTERM). VMs keep running; actions under way finish first. */
  signal: AbortSignal;
}

export async function runHeartbeatLoop(options: HeartbeatLoopOptions): Promise<void> {
  const { client, driver, reconciler, log, nodeId, signal } = options;
  const uploaded = new Map<string, string>();
  let interval = options.intervalS ?? DEFAULT_HEARTBEAT_INTERVAL_S;
  let beats = 0;
  while (!signal.aborted) {
    try {
      const capacity = readCapacity(options.stateDir);
      const observed = await reconciler.observe();
      const reply = await client.heartbeat(nodeId, capacity, observed);
      if (beats++ === 0) log.info({ node_id: nodeId, vms: reply.vms.length }, 'first heartbeat answered');
      interval = options.intervalS ?? reply.heartbeat_interval_s;
      await reconciler.reconcile(reply.vms);
      const kept = new Set(reply.vms.filter((vm) => vm.desired_state !== 'deleted').map((vm) => vm.vm_id));
      for (const vmId of driver.vmIds().filter((id) => kept.has(id))) await uploadConsoleIfChanged(options, vmId, uploaded);
      for (const vmId of uploaded.keys()) if (!kept.has(vmId)) uploaded.delete(vmId);
    } catch (error) {
      onRefusal(options, error);
    }
    await pause(interval * 1000, signal);
  }
  await reconciler.settled();
}

/**
 * What a failed heartbeat means for the node. Three refusals have a cause the operator can act on,
 * and say so; one of them the agent acts on itself. Whatever the cause, it heartbeats again next
 * interval: a removed node may be enrolled again, a server restored, a network mended.
 *
 * - 404 naming a `vm_id`: the server knows this node but does not place that VM on it (the node was
 *   removed and enrolled again, say). Its heartbeats would be refused for as long as it reports the
 *   VM, so the VM is ended, as one the desired list leaves out.
 * - 404 otherwise: the server has no such node in the token's tenant (removed with DELETE
 *   /v1/nodes/{id}). The VMs stay as they are: the agent cannot tell a removed node from a server
 *   whose state was lost, and a disk is not removed on a guess.
 * - 401: the token is refused (expired, revoked, or the node key is not its holder).
 */
function onRefusal(options: HeartbeatLoopOptions, error: unknown): void {
  const { log, nodeId } = options;
  const err = (error as Error).message;
  const status = error instanceof AgentError && error.code === 'server_refused' ? error.status : undefined;
  const vmId = status === 404 ? (error as AgentError).problem.vm_id : undefined;
  if (typeof vmId === 'string') {
    const begun = options.reconciler.disown(vmId);
    log.warn({ node_id: nodeId, vm_id: vmId, err, ending: begun.length > 0 }, `the server does not place VM ${vmId} on this node; ending it here`);
  } else if (status === 404) {
    log.error(
      { node_id: nodeId, err },
      `the server has no node ${nodeId} for this token (removed with DELETE /v1/nodes/${nodeId}?); the VMs stay as they are; enroll again with "service-vm-host enroll" to rejoin`,
    );
  } else if (status === 401) {
    log.error({ node_id: nodeId, err }, "the server refuses this node's token (expired or revoked?); the VMs stay as they are; enroll again with a new node:agent token");
  } else {
    log.warn({ node_id: nodeId, err }, 'heartbeat failed; the VMs stay as they are');
  }
}

/** At most one upload per VM per heartbeat, and only when the console file changed (size or mtime). */
async function uploadConsoleIfChanged(options: HeartbeatLoopOptions, vmId: string, uploaded: Map<string, string>): Promise<void> {
  let version: string;
  try {
    const stat = statSync(join(options.driver.vmDir(vmId), 'console.log'));
    version = `${stat.size}:${stat.mtimeMs}`;
  } catch {
    return; // never started: no console yet
  }
  if (uploaded.get(vmId) === version) return;
  try {
    await options.client.uploadConsole(options.nodeId, vmId, options.driver.consoleTail(vmId));
    uploaded.set(vmId, version);
  } catch (error) {
    options.log.warn({ vm_id: vmId, err: (error as Error).message }, 'console upload failed; trying again next heartbeat');
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
