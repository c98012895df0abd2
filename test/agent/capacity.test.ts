/** The capacity a heartbeat reports, against what the machine's own tools say. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmUsable, readCapacity } from '../../src/agent/capacity.js';

const stateDir = mkdtempSync(join(tmpdir(), 'ppn-capacity-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

function sh(command: string): string {
  return execFileSync('sh', ['-c', command], { encoding: 'utf8' }).trim();
}

describe('capacity', () => {
  it('reports the online CPU count (getconf _NPROCESSORS_ONLN, what nproc shows without affinity limits), and whole numbers', () => {
    const capacity = readCapacity(stateDir);
    expect(capacity.cpus).toBe(Number(sh('getconf _NPROCESSORS_ONLN')));
    for (const field of ['cpus', 'memory_mb_total', 'memory_mb_available', 'disk_gb_available'] as const) expect(Number.isSafeInteger(capacity[field])).toBe(true);
  });

  it('reports total memory as free -m does, and available memory close to what free -m says now', () => {
    const capacity = readCapacity(stateDir);
    const [total, available] = sh("free -m | awk '/^Mem:/ {print $2, $7}'").split(' ').map(Number);
    expect(Math.abs(capacity.memory_mb_total - total!)).toBeLessThanOrEqual(1);
    // Available memory moves while other processes run: within 256 MiB of the reading a moment apart.
    expect(Math.abs(capacity.memory_mb_available - available!)).toBeLessThanOrEqual(256);
    expect(capacity.memory_mb_available).toBeLessThanOrEqual(capacity.memory_mb_total);
  });

  it("reports the free disk of the state directory's file system as df does, in whole GiB", () => {
    const capacity = readCapacity(stateDir);
    const availableBytes = Number(sh(`df -B1 --output=avail ${JSON.stringify(stateDir)} | tail -1`));
    // Files come and go on a shared disk: within 1 GiB of df's reading a moment apart.
    expect(Math.abs(capacity.disk_gb_available - Math.floor(availableBytes / 1024 ** 3))).toBeLessThanOrEqual(1);
  });

  it('reports kvm as whether /dev/kvm can be opened read-write', () => {
    const opensReadWrite = sh('if [ -c /dev/kvm ] && { true <>/dev/kvm; } 2>/dev/null; then echo yes; else echo no; fi') === 'yes';
    expect(readCapacity(stateDir).kvm).toBe(opensReadWrite);
    expect(kvmUsable(join(stateDir, 'no-such-device'))).toBe(false);
  });

  it('reports the one-minute load average of /proc/loadavg', () => {
    const load1 = Number(sh('cut -d" " -f1 /proc/loadavg'));
    expect(Math.abs(readCapacity(stateDir).load1 - load1)).toBeLessThanOrEqual(0.5);
  });
});
