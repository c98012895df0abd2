/**
 * `service-vm-host run`: the agent's loop. Each turn reads the capacity and what every VM is doing,
 * sends them in a heartbeat, reconciles towards the reply's desired list, and uploads the console of
 * each VM whose console file changed since its last upload. A failed heartbeat changes nothing on
 * the node: its VMs keep running as they were until the server answers again.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { readCapacity } from './capacity.js';
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
      log.warn({ node_id: nodeId, err: (error as Error).message }, 'heartbeat failed; the VMs stay as they are');
    }
    await pause(interval * 1000, signal);
  }
  await reconciler.settled();
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
