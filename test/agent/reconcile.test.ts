/** The reconciler against real QEMU: desired lists applied level-triggered and idempotently. */
import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { QemuDriver } from '../../src/agent/qemu.js';
import { Reconciler, type DesiredState, type DesiredVm } from '../../src/agent/reconcile.js';
import { eventually, guestSpec, guestStateDir, killGuests, processAlive } from '../support/qemu-guests.js';

afterAll(killGuests);

function desired(vmId: string, desiredState: DesiredState, image: string | null = 'guest.qcow2'): DesiredVm {
  return { ...guestSpec(vmId, { image }), desired_state: desiredState };
}

function node(stateDir = guestStateDir()): { driver: QemuDriver; reconciler: Reconciler; stateDir: string } {
  const driver = new QemuDriver({ stateDir, stopTimeoutMs: 500, kvm: false });
  return { driver, reconciler: new Reconciler(driver), stateDir };
}

async function observedState(reconciler: Reconciler, vmId: string): Promise<string | undefined> {
  return (await reconciler.observe()).find((vm) => vm.vm_id === vmId)?.state;
}

async function untilObserved(reconciler: Reconciler, vmId: string, state: string): Promise<void> {
  await eventually(`${vmId} ${state}`, async () => ((await observedState(reconciler, vmId)) === state ? true : undefined));
}

describe('reconciler', () => {
  it('creates and starts a VM desired running; the same list again begins nothing', async () => {
    const { reconciler, driver } = node();
    const list = [desired('vm-r1', 'running'), desired('vm-r2', 'stopped')];
    expect(await reconciler.reconcile(list)).toEqual([
      { vm_id: 'vm-r1', action: 'create' },
      { vm_id: 'vm-r2', action: 'create' },
    ]);
    await reconciler.settled();
    await untilObserved(reconciler, 'vm-r1', 'running');
    const pid = driver.livePid('vm-r1', 'qemu.pid');
    expect(await reconciler.observe()).toEqual([
      { vm_id: 'vm-r1', state: 'running' },
      { vm_id: 'vm-r2', state: 'stopped' },
    ]);

    expect(await reconciler.reconcile(list)).toEqual([]);
    await reconciler.settled();
    expect(driver.livePid('vm-r1', 'qemu.pid')).toBe(pid);
    await reconciler.reconcile([]);
    await reconciler.settled();
  });

  it('stops a running VM desired stopped, and starts it again when desired running', async () => {
    const { reconciler, driver } = node();
    await reconciler.reconcile([desired('vm-s', 'running')]);
    await reconciler.settled();
    await untilObserved(reconciler, 'vm-s', 'running');
    const pid = driver.livePid('vm-s', 'qemu.pid')!;

    expect(await reconciler.reconcile([desired('vm-s', 'stopped')])).toEqual([{ vm_id: 'vm-s', action: 'stop' }]);
    // While the stop waits for the guest, another pass begins nothing more for it.
    expect(await reconciler.reconcile([desired('vm-s', 'stopped')])).toEqual([]);
    await reconciler.settled();
    expect(processAlive(pid)).toBe(false);
    expect(await observedState(reconciler, 'vm-s')).toBe('stopped');
    expect(await reconciler.reconcile([desired('vm-s', 'stopped')])).toEqual([]);

    expect(await reconciler.reconcile([desired('vm-s', 'running')])).toEqual([{ vm_id: 'vm-s', action: 'start' }]);
    await reconciler.settled();
    await untilObserved(reconciler, 'vm-s', 'running');
    await reconciler.reconcile([]);
    await reconciler.settled();
  });

  it('destroys a local VM the list does not name and one it names as deleted, after which neither is observed', async () => {
    const { reconciler, driver } = node();
    await reconciler.reconcile([desired('vm-d1', 'running'), desired('vm-d2', 'running'), desired('vm-keep', 'stopped')]);
    await reconciler.settled();
    await untilObserved(reconciler, 'vm-d1', 'running');
    await untilObserved(reconciler, 'vm-d2', 'running');
    const pids = [driver.livePid('vm-d1', 'qemu.pid')!, driver.livePid('vm-d2', 'qemu.pid')!];

    const begun = await reconciler.reconcile([desired('vm-d2', 'deleted'), desired('vm-keep', 'stopped')]);
    expect(begun).toEqual([
      { vm_id: 'vm-d1', action: 'destroy' },
      { vm_id: 'vm-d2', action: 'destroy' },
    ]);
    await reconciler.settled();
    expect(pids.map(processAlive)).toEqual([false, false]);
    expect([existsSync(driver.vmDir('vm-d1')), existsSync(driver.vmDir('vm-d2'))]).toEqual([false, false]);
    expect(await reconciler.observe()).toEqual([{ vm_id: 'vm-keep', state: 'stopped' }]);
    expect(await reconciler.reconcile([desired('vm-d2', 'deleted'), desired('vm-keep', 'stopped')])).toEqual([]);
  });

  it('a VM whose image the node lacks is observed failed with the reason, and forgotten once the list drops it', async () => {
    const { reconciler } = node();
    await reconciler.reconcile([desired('vm-noimg', 'running', 'absent.qcow2')]);
    await reconciler.settled();
    const [seen] = await reconciler.observe();
    expect(seen).toMatchObject({ vm_id: 'vm-noimg', state: 'failed' });
    expect(seen!.reason).toContain('image "absent.qcow2" is not in the node\'s images directory');
    await reconciler.reconcile([]);
    expect(await reconciler.observe()).toEqual([]);
  });

  it('a VM whose QEMU died stays failed while desired running, and is stopped when desired stopped', async () => {
    const { reconciler, driver } = node();
    await reconciler.reconcile([desired('vm-f', 'running')]);
    await reconciler.settled();
    await untilObserved(reconciler, 'vm-f', 'running');
    process.kill(driver.livePid('vm-f', 'qemu.pid')!, 'SIGKILL');
    await untilObserved(reconciler, 'vm-f', 'failed');

    expect(await reconciler.reconcile([desired('vm-f', 'running')])).toEqual([]);
    expect(await observedState(reconciler, 'vm-f')).toBe('failed');
    expect(await reconciler.reconcile([desired('vm-f', 'stopped')])).toEqual([{ vm_id: 'vm-f', action: 'mark-stopped' }]);
    await reconciler.settled();
    expect(await observedState(reconciler, 'vm-f')).toBe('stopped');
    await reconciler.reconcile([]);
    await reconciler.settled();
  });

  it('a new reconciler over the same state directory (an agent restart) begins nothing for VMs already as desired', async () => {
    const first = node();
    const list = [desired('vm-a1', 'running'), desired('vm-a2', 'running'), desired('vm-a3', 'running')];
    await first.reconciler.reconcile(list);
    await first.reconciler.settled();
    for (const vm of list) await untilObserved(first.reconciler, vm.vm_id, 'running');
    const pids = list.map((vm) => first.driver.livePid(vm.vm_id, 'qemu.pid'));

    const second = node(first.stateDir);
    expect(await second.reconciler.reconcile(list)).toEqual([]);
    expect(list.map((vm) => second.driver.livePid(vm.vm_id, 'qemu.pid'))).toEqual(pids);
    expect((await second.reconciler.observe()).map((vm) => vm.state)).toEqual(['running', 'running', 'running']);
    await second.reconciler.reconcile([]);
    await second.reconciler.settled();
  });

  it('disown ends a VM the server does not place on this node, and names nothing that is not a local VM', async () => {
    const { reconciler, driver, stateDir } = node();
    await reconciler.reconcile([desired('vm-d', 'running')]);
    await reconciler.settled();
    await untilObserved(reconciler, 'vm-d', 'running');
    const pid = driver.livePid('vm-d', 'qemu.pid')!;

    expect(reconciler.disown('../images')).toEqual([]);
    expect(reconciler.disown('vm-unknown')).toEqual([]);
    expect(reconciler.disown('vm-d')).toEqual([{ vm_id: 'vm-d', action: 'destroy' }]);
    await reconciler.settled();
    expect(processAlive(pid)).toBe(false);
    expect(existsSync(`${stateDir}/vms/vm-d`)).toBe(false);
    expect(existsSync(`${stateDir}/images/guest.qcow2`)).toBe(true);
    expect(await reconciler.observe()).toEqual([]);
  });
});
