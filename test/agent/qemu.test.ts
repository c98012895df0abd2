/**
 * The QEMU driver against real QEMU: a hand-written boot-sector guest (test/support/guest-image.ts)
 * on a qcow2 overlay, its console, QMP, stop, start, delete, a killed QEMU, and re-adoption by a
 * second driver as after an agent restart.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmUsable } from '../../src/agent/capacity.js';
import { AgentError } from '../../src/agent/error.js';
import { QemuDriver, MAX_REASON_BYTES } from '../../src/agent/qemu.js';
import { qmpQueryStatus } from '../../src/agent/qmp.js';
import { GUEST_LINE } from '../support/guest-image.js';
import { commandLine, eventually, guestSpec, guestStateDir, killGuests, processAlive } from '../support/qemu-guests.js';

afterAll(killGuests);

function driverFor(stateDir: string, stopTimeoutMs = 1000): QemuDriver {
  return new QemuDriver({ stateDir, stopTimeoutMs, kvm: false });
}

async function running(driver: QemuDriver, vmId: string): Promise<number> {
  await eventually(`${vmId} running`, async () => ((await driver.observe(vmId)).state === 'running' ? true : undefined));
  return driver.livePid(vmId, 'qemu.pid')!;
}

function consoleText(driver: QemuDriver, vmId: string): string {
  return driver.consoleTail(vmId).toString('latin1');
}

/** A fresh driver with the guest `vmId` created, started and printing its line; QEMU's pid. */
async function bootedGuest(vmId: string): Promise<{ driver: QemuDriver; pid: number }> {
  const driver = driverFor(guestStateDir());
  await driver.create(guestSpec(vmId));
  await driver.start(vmId);
  const pid = await running(driver, vmId);
  await eventually('the guest line', () => (consoleText(driver, vmId).includes(GUEST_LINE) ? true : undefined));
  return { driver, pid };
}

describe('QEMU driver', () => {
  it('boots a guest on an overlay of a base image: QMP says running, the console has its line, the command line names the VM with exactly its vCPUs and memory', async () => {
    const stateDir = guestStateDir();
    const driver = driverFor(stateDir);
    await driver.create(guestSpec('vm-boot', { vcpus: 2, memory_mb: 96 }));
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(driver.vmDir('vm-boot'), 'disk.qcow2')], { encoding: 'utf8' }));
    expect(info['backing-filename']).toBe(join(stateDir, 'images', 'guest.qcow2'));
    expect(info['virtual-size']).toBe(1024 ** 3);
    expect((await driver.observe('vm-boot')).state).toBe('stopped');

    await driver.start('vm-boot');
    const pid = await running(driver, 'vm-boot');
    expect(await qmpQueryStatus(join(driver.vmDir('vm-boot'), 'qmp.sock'))).toEqual({ status: 'running', running: true });
    await eventually('the guest line', () => (consoleText(driver, 'vm-boot').includes(GUEST_LINE) ? true : undefined));

    const args = commandLine(pid);
    expect(args[0]).toBe('qemu-system-x86_64');
    expect(args[args.indexOf('-name') + 1]).toBe('vm-boot,process=vm-boot');
    expect(args[args.indexOf('-smp') + 1]).toBe('2');
    expect(args[args.indexOf('-m') + 1]).toBe('96');
    expect(args[args.indexOf('-accel') + 1]).toBe('tcg');
    expect(args[args.indexOf('-nic') + 1]).toMatch(/^user\b/);
    await driver.destroy('vm-boot');
  });

  it('stop ends QEMU (quit after the stop timeout, as this guest ignores ACPI) and the VM is stopped; start boots it again with the console kept', async () => {
    const { driver, pid: first } = await bootedGuest('vm-stop');

    await driver.stop('vm-stop');
    expect(processAlive(first)).toBe(false);
    expect(await driver.observe('vm-stop')).toEqual({ vm_id: 'vm-stop', state: 'stopped' });
    await driver.stop('vm-stop'); // again: nothing to do
    expect((await driver.observe('vm-stop')).state).toBe('stopped');

    await driver.start('vm-stop');
    const second = await running(driver, 'vm-stop');
    expect(second).not.toBe(first);
    await eventually('the line twice', () => (consoleText(driver, 'vm-stop').split(GUEST_LINE).length === 3 ? true : undefined));
    await driver.destroy('vm-stop');
  });

  it('destroy ends QEMU and removes the VM directory', async () => {
    const { driver, pid } = await bootedGuest('vm-gone');
    await driver.destroy('vm-gone');
    expect(processAlive(pid)).toBe(false);
    expect(existsSync(driver.vmDir('vm-gone'))).toBe(false);
    expect(driver.vmIds()).toEqual([]);
    await driver.destroy('vm-gone'); // again: nothing to do
  });

  it('a QEMU killed with SIGKILL makes the VM failed, with a reason naming SIGKILL and the last console line', async () => {
    const { driver, pid } = await bootedGuest('vm-killed');
    process.kill(pid, 'SIGKILL');
    const failed = await eventually('failed', async () => {
      const seen = await driver.observe('vm-killed');
      return seen.state === 'failed' ? seen : undefined;
    });
    expect(failed.reason).toMatch(/^QEMU was killed by SIGKILL \(exit status 137\)/);
    expect(failed.reason).toContain(GUEST_LINE);
    expect(Buffer.byteLength(failed.reason!)).toBeLessThanOrEqual(MAX_REASON_BYTES);
    await driver.destroy('vm-killed');
  });

  it('a second driver on the same state directory (an agent restart) re-adopts the running QEMU: same pid, and start launches nothing', async () => {
    const stateDir = guestStateDir();
    const before = driverFor(stateDir);
    await before.create(guestSpec('vm-adopt-a'));
    await before.create(guestSpec('vm-adopt-b'));
    await before.start('vm-adopt-a');
    await before.start('vm-adopt-b');
    const pids = [await running(before, 'vm-adopt-a'), await running(before, 'vm-adopt-b')];

    const after = driverFor(stateDir);
    expect(after.vmIds()).toEqual(['vm-adopt-a', 'vm-adopt-b']);
    expect((await after.observe('vm-adopt-a')).state).toBe('running');
    await after.create(guestSpec('vm-adopt-a'));
    await after.start('vm-adopt-a');
    await after.start('vm-adopt-b');
    expect([after.livePid('vm-adopt-a', 'qemu.pid'), after.livePid('vm-adopt-b', 'qemu.pid')]).toEqual(pids);
    const qemus = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.startsWith('qemu-system-x86_64') && line.includes('-name vm-adopt-a,'));
    expect(qemus).toHaveLength(1);
    await after.destroy('vm-adopt-a');
    await after.destroy('vm-adopt-b');
  });

  it('a pid file naming a live process that is not this VM (a reused pid) is not adopted', async () => {
    const driver = driverFor(guestStateDir());
    await driver.create(guestSpec('vm-reused'));
    writeFileSync(join(driver.vmDir('vm-reused'), 'qemu.pid'), `${process.pid}\n`);
    expect(driver.livePid('vm-reused', 'qemu.pid')).toBeUndefined();
    expect((await driver.observe('vm-reused')).state).toBe('stopped');
    await driver.destroy('vm-reused');
    expect(processAlive(process.pid)).toBe(true);
  });

  it('QEMU outlives a SIGKILL of the agent process that launched it', async () => {
    const stateDir = guestStateDir();
    const driverModule = resolve('dist/src/agent/qemu.js');
    const script = `
      const { QemuDriver } = await import(${JSON.stringify(driverModule)});
      const driver = new QemuDriver({ stateDir: ${JSON.stringify(stateDir)}, kvm: false });
      await driver.create({ vm_id: 'vm-orphan', name: 'vm-orphan', vcpus: 1, memory_mb: 64, disk_gb: 1, image: 'guest.qcow2' });
      await driver.start('vm-orphan');
      process.stdout.write('started\\n');
      setInterval(() => {}, 1000);`;
    const agent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((done, fail) => {
      agent.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('started') && done());
      agent.on('exit', (code) => fail(new Error(`the agent exited with ${code}`)));
    });
    const driver = driverFor(stateDir);
    const pid = await running(driver, 'vm-orphan');
    agent.kill('SIGKILL');
    await new Promise((done) => agent.once('exit', done));
    expect(processAlive(pid)).toBe(true);
    expect(await driver.observe('vm-orphan')).toEqual({ vm_id: 'vm-orphan', state: 'running' });
    await driver.destroy('vm-orphan');
    expect(processAlive(pid)).toBe(false);
  });

  it('makes a blank qcow2 disk of disk_gb when the VM names no image', async () => {
    const driver = driverFor(guestStateDir());
    await driver.create(guestSpec('vm-blank', { image: null, disk_gb: 3 }));
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(driver.vmDir('vm-blank'), 'disk.qcow2')], { encoding: 'utf8' }));
    expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 3 * 1024 ** 3 });
    expect(info['backing-filename']).toBeUndefined();
    expect(JSON.parse(readFileSync(join(driver.vmDir('vm-blank'), 'spec.json'), 'utf8'))).toMatchObject({ disk_gb: 3, image: null });
  });

  it.each(['../guest.qcow2', 'sub/guest.qcow2', '..', '/etc/passwd'])('refuses the image name %j and makes no VM directory', async (image) => {
    const driver = driverFor(guestStateDir());
    const refused = await driver.create(guestSpec('vm-bad-image', { image })).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(AgentError);
    expect((refused as AgentError).code).toBe('bad_image_name');
    expect(driver.vmIds()).toEqual([]);
  });

  it('refuses an image the images directory does not hold', async () => {
    const driver = driverFor(guestStateDir());
    await expect(driver.create(guestSpec('vm-no-image', { image: 'absent.qcow2' }))).rejects.toMatchObject({ code: 'image_missing' });
    expect(driver.vmIds()).toEqual([]);
  });

  it('uses -accel kvm when /dev/kvm opens read-write and -accel tcg otherwise', () => {
    const driver = new QemuDriver({ stateDir: guestStateDir() });
    const args = driver.qemuArgs(guestSpec('vm-accel'));
    expect(args[args.indexOf('-accel') + 1]).toBe(kvmUsable() ? 'kvm' : 'tcg');
  });
});
