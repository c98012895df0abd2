/**
 * The reconciler: brings the node's VMs to the desired list of the last heartbeat reply, and says
 * what they are. Level-triggered: every pass compares the whole list with what the VM directories
 * and QEMU processes show now, so a lost reply, a repeated reply or an agent restart needs nothing
 * special, and applying the same list twice does nothing the second time.
 *
 * Actions run in the background, at most one per VM: a stop may wait the whole stop timeout for a
 * guest to power off, and the heartbeat loop must not wait with it. A VM busy with an action is left
 * alone by later passes until the action ends.
 */
import { AgentError } from './error.js';
import { boundedReason, checkVmId, type QemuDriver, type VmObservation, type VmSpec } from './qemu.js';

export type DesiredState = 'running' | 'stopped' | 'deleted';

export interface DesiredVm extends VmSpec {
  desired_state: DesiredState;
}

export type Action = 'create' | 'start' | 'stop' | 'destroy' | 'mark-stopped';

export interface BegunAction {
  vm_id: string;
  action: Action;
}

export interface ReconcileLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

const silent: ReconcileLog = { info: () => {}, warn: () => {} };

export class Reconciler {
  private readonly busy = new Map<string, Promise<void>>();
  /** VMs whose directory could not be made (no such image, qemu-img failed): reported failed, tried again each pass. */
  private readonly createFailures = new Map<string, string>();

  constructor(
    private readonly driver: QemuDriver,
    private readonly log: ReconcileLog = silent,
  ) {}

  /** Begins what brings the local VMs to `desired` (SPEC §7); returns what it began. */
  async reconcile(desired: readonly DesiredVm[]): Promise<BegunAction[]> {
    const begun: BegunAction[] = [];
    const wanted = new Map(desired.map((vm) => [vm.vm_id, vm]));
    for (const vmId of [...this.createFailures.keys()]) {
      if ((wanted.get(vmId)?.desired_state ?? 'deleted') === 'deleted') this.createFailures.delete(vmId);
    }

    // The list is authoritative: a local VM it does not name, or names as deleted, goes.
    for (const vmId of this.driver.vmIds()) {
      if ((wanted.get(vmId)?.desired_state ?? 'deleted') === 'deleted') this.begin(vmId, 'destroy', () => this.driver.destroy(vmId), begun);
    }
    for (const vm of wanted.values()) {
      if (vm.desired_state === 'deleted' || this.busy.has(vm.vm_id)) continue;
      const local = this.driver.vmIds().includes(vm.vm_id);
      if (!local) {
        this.begin(vm.vm_id, 'create', () => this.create(vm), begun);
        continue;
      }
      const { state } = await this.driver.observe(vm.vm_id);
      if (vm.desired_state === 'running' && state === 'stopped') this.begin(vm.vm_id, 'start', () => this.driver.start(vm.vm_id), begun);
      if (vm.desired_state === 'stopped' && (state === 'running' || state === 'starting')) this.begin(vm.vm_id, 'stop', () => this.driver.stop(vm.vm_id), begun);
      // A failed VM stays failed while it should run (the server decides what next); told to stop, it is stopped.
      if (vm.desired_state === 'stopped' && state === 'failed') this.begin(vm.vm_id, 'mark-stopped', () => this.driver.stop(vm.vm_id), begun);
    }
    return begun;
  }

  private async create(vm: DesiredVm): Promise<void> {
    try {
      checkVmId(vm.vm_id);
      await this.driver.create(vm);
      this.createFailures.delete(vm.vm_id);
    } catch (error) {
      if (!(error instanceof AgentError)) throw error;
      this.createFailures.set(vm.vm_id, boundedReason(`the VM could not be created on this node: ${error.message}`, Buffer.alloc(0)));
      return;
    }
    if (vm.desired_state === 'running') await this.driver.start(vm.vm_id);
  }

  private begin(vmId: string, action: Action, work: () => Promise<void>, begun: BegunAction[]): void {
    if (this.busy.has(vmId)) return;
    begun.push({ vm_id: vmId, action });
    this.log.info({ vm_id: vmId, action }, `${action} ${vmId}`);
    const running = work()
      .catch((error: unknown) => this.log.warn({ vm_id: vmId, action, err: (error as Error).message }, `${action} ${vmId} failed; the next pass tries again`))
      .finally(() => this.busy.delete(vmId));
    this.busy.set(vmId, running);
  }

  /**
   * Ends a local VM the server says is not placed on this node (it refused a heartbeat reporting
   * it): QEMU quit, directory removed, as for a VM the desired list leaves out. Only a VM this node
   * holds: the id comes from the server, and names nothing else here.
   */
  disown(vmId: string): BegunAction[] {
    const begun: BegunAction[] = [];
    this.createFailures.delete(vmId);
    if (this.driver.vmIds().includes(vmId)) this.begin(vmId, 'destroy', () => this.driver.destroy(vmId), begun);
    return begun;
  }

  /** Resolves when every action begun so far has ended. */
  async settled(): Promise<void> {
    while (this.busy.size > 0) await Promise.all(this.busy.values());
  }

  /** One observation per VM directory, and a failed one per VM that could not be created. */
  async observe(): Promise<VmObservation[]> {
    const observed: VmObservation[] = [];
    for (const vmId of this.driver.vmIds()) observed.push(await this.driver.observe(vmId));
    for (const [vmId, reason] of this.createFailures) if (!observed.some((vm) => vm.vm_id === vmId)) observed.push({ vm_id: vmId, state: 'failed', reason });
    return observed;
  }
}
