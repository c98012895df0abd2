/**
 * What a node offers, as the heartbeat reports it (SPEC §7): CPUs, memory total and available
 * (/proc/meminfo), free disk of the state directory, whether /dev/kvm can be used, and load.
 */
import { closeSync, constants, openSync, readFileSync, statfsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

export interface Capacity {
  cpus: number;
  memory_mb_total: number;
  memory_mb_available: number;
  disk_gb_available: number;
  kvm: boolean;
  load1: number;
}

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** A field of /proc/meminfo in MiB (the file counts kB, that is KiB). */
function meminfoMb(meminfo: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(meminfo);
  if (!match) throw new Error(`/proc/meminfo has no ${field}`);
  return Math.floor(Number(match[1]) / 1024);
}

/** Whether this process can open /dev/kvm read-write, which is what QEMU's -accel kvm needs. */
export function kvmUsable(device = '/dev/kvm'): boolean {
  try {
    closeSync(openSync(device, constants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}

export function readCapacity(stateDir: string): Capacity {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  const disk = statfsSync(stateDir);
  return {
    cpus: cpus().length,
    memory_mb_total: meminfoMb(meminfo, 'MemTotal'),
    memory_mb_available: meminfoMb(meminfo, 'MemAvailable'),
    // bavail, not bfree: the blocks an unprivileged writer may use, as df shows them.
    disk_gb_available: Math.floor((disk.bavail * disk.bsize) / GIB),
    kvm: kvmUsable(),
    load1: Math.round(loadavg()[0]! * 100) / 100,
  };
}
