/**
 * Real QEMU guests for the agent tests: a state directory with the hand-written boot-sector guest
 * as a base image, polling helpers, and the clean-up that never leaves a QEMU process behind.
 *
 * The guests run under TCG: this boot sector is up in well under a second there, while SeaBIOS
 * under a nested KVM (as on some CI machines) can take many seconds. The choice of accelerator
 * itself is tested apart.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmSpec } from '../../src/agent/qemu.js';
import { writeGuestImage } from './guest-image.js';

export const GUEST_IMAGE = 'guest.qcow2';

export function guestSpec(vmId: string, overrides: Partial<VmSpec> = {}): VmSpec {
  return { vm_id: vmId, name: vmId, vcpus: 1, memory_mb: 64, disk_gb: 1, image: GUEST_IMAGE, ...overrides };
}

const stateDirs: string[] = [];

/** A fresh state directory whose images/ holds the test guest as GUEST_IMAGE. */
export function guestStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ppn-host-'));
  stateDirs.push(dir);
  mkdirSync(join(dir, 'images'), { mode: 0o700 });
  writeGuestImage(join(dir, 'images'), GUEST_IMAGE);
  return dir;
}

/** Polls `probe` until it returns something other than undefined; throws after `timeoutMs`. */
export async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function processAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`).length > 0;
  } catch {
    return false;
  }
}

export function commandLine(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
}

/**
 * Kills (SIGKILL, the whole process group of each VM's supervising shell, and QEMU itself) every
 * VM process started under the state directories made here, then removes the directories.
 */
export function killGuests(): void {
  for (const dir of stateDirs.splice(0)) {
    killVmProcesses(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** SIGKILL to every live QEMU process (and its supervising shell's group) of the VMs in a state directory. */
export function killVmProcesses(dir: string): void {
  let vms: string[] = [];
  try {
    vms = readdirSync(join(dir, 'vms'));
  } catch {
    // no VM was made
  }
  for (const vm of vms) {
    for (const file of ['supervisor.pid', 'qemu.pid']) {
      let pid: number;
      try {
        pid = Number(readFileSync(join(dir, 'vms', vm, file), 'utf8').trim());
      } catch {
        continue;
      }
      // Only a process whose command line names this VM: never a stranger that reused the pid.
      if (!(pid > 1) || !processAlive(pid) || !commandLine(pid).some((arg) => arg.startsWith(vm))) continue;
      try {
        process.kill(file === 'supervisor.pid' ? -pid : pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
