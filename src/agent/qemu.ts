/**
 * The QEMU driver (SPEC §7): one directory per VM under `<state-dir>/vms/<vm_id>/`, a qemu-img disk,
 * and a `qemu-system-x86_64` process that outlives the agent. The only place that spawns processes.
 *
 * Everything the driver knows about a VM is in its directory, so a restarted agent (a new driver)
 * sees exactly what the old one left, and re-adopts a running QEMU instead of launching a second:
 *
 *   spec.json       the VM as the server described it when it was created
 *   disk.qcow2      its disk: an overlay on images/<image>, or blank
 *   stopped         present while the VM is meant to be off (created, or stopped on request)
 *   supervisor.pid  the `sh` that runs QEMU and writes its exit status when it ends
 *   qemu.pid        QEMU's own pid (QEMU writes it, -pidfile)
 *   qmp.sock        QMP, for status, powerdown and quit
 *   console.log     the serial console
 *   qemu.log        QEMU's own stdout and stderr
 *   exit-status     QEMU's exit status, as sh's $? (128 + signal number when a signal ended it)
 *
 * A pid counts only while /proc/<pid>/cmdline carries `-name <vm_id>`: a pid file left by a dead
 * QEMU whose number the kernel gave to another process never makes the driver adopt or kill that.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync, fstatSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kvmUsable } from './capacity.js';
import { AgentError } from './error.js';
import { QmpError, qmpExecute, qmpQueryStatus } from './qmp.js';

const run = promisify(execFile);

export interface VmSpec {
  vm_id: string;
  name: string;
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  image: string | null;
}

export type ObservedState = 'starting' | 'running' | 'stopped' | 'failed';

export interface VmObservation {
  vm_id: string;
  state: ObservedState;
  reason?: string;
}

export interface QemuDriverOptions {
  stateDir: string;
  /** How long a guest gets to power off after system_powerdown before QEMU is told to quit. */
  stopTimeoutMs?: number;
  /** Whether to use KVM; by default, whether /dev/kvm opens read-write. */
  kvm?: boolean;
}

/** The console bytes a tenant can read, and a failure reason quotes the end of. */
export const CONSOLE_TAIL_BYTES = 64 * 1024;
/** A failure reason travels in every heartbeat; the protocol bounds it. */
export const MAX_REASON_BYTES = 1024;

const DEFAULT_STOP_TIMEOUT_MS = 30_000;
/** After quit (or a kill) a QEMU process is gone in well under this. */
const EXIT_GRACE_MS = 5_000;
const POLL_MS = 50;
const GIB = 1024 * 1024 * 1024;

/** vm ids become directory names: nothing that could climb out of vms/ or confuse QEMU's option syntax. */
const VM_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function checkVmId(vmId: string): void {
  if (!VM_ID.test(vmId)) throw new AgentError('bad_vm_id', `"${vmId}" is not a VM id this agent accepts (letters, digits, _ and -)`);
}

/** An image name is a file name in images/: a name with "/" or ".." could reach any file on the node. */
export function checkImageName(image: string): void {
  if (image === '' || image.includes('/') || image.includes('..') || image.includes('\0')) {
    throw new AgentError('bad_image_name', `image "${image}" is not a file name in the node's images directory`);
  }
}

export class QemuDriver {
  readonly vmsDir: string;
  readonly imagesDir: string;
  private readonly stopTimeoutMs: number;
  private readonly kvm: boolean;

  constructor(options: QemuDriverOptions) {
    this.vmsDir = join(options.stateDir, 'vms');
    this.imagesDir = join(options.stateDir, 'images');
    this.stopTimeoutMs = options.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    this.kvm = options.kvm ?? kvmUsable();
    mkdirSync(this.vmsDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.imagesDir, { recursive: true, mode: 0o700 });
  }

  vmDir(vmId: string): string {
    checkVmId(vmId);
    return join(this.vmsDir, vmId);
  }

  /** The VMs this node holds: one per directory (a half-made `.<id>.new` directory is not one). */
  vmIds(): string[] {
    return readdirSync(this.vmsDir)
      .filter((name) => VM_ID.test(name))
      .sort();
  }

  spec(vmId: string): VmSpec | undefined {
    try {
      return JSON.parse(readFileSync(join(this.vmDir(vmId), 'spec.json'), 'utf8')) as VmSpec;
    } catch {
      return undefined;
    }
  }

  /**
   * Makes the VM's directory and disk, off. Idempotent: an existing VM is left as it is. The
   * directory is built under a temporary name and renamed, so a crash never leaves a VM without a disk.
   */
  async create(spec: VmSpec): Promise<void> {
    const dir = this.vmDir(spec.vm_id);
    if (existsSync(dir)) return;
    if (spec.image !== null) checkImageName(spec.image);
    const building = join(this.vmsDir, `.${spec.vm_id}.new`);
    rmSync(building, { recursive: true, force: true });
    mkdirSync(building, { mode: 0o700 });
    try {
      await this.makeDisk(join(building, 'disk.qcow2'), spec);
      writeFileSync(join(building, 'spec.json'), `${JSON.stringify(spec)}\n`);
      writeFileSync(join(building, 'stopped'), '');
      renameSync(building, dir);
    } catch (error) {
      rmSync(building, { recursive: true, force: true });
      throw error;
    }
  }

  private async makeDisk(disk: string, spec: VmSpec): Promise<void> {
    const size = spec.disk_gb * GIB;
    try {
      if (spec.image === null) {
        await run('qemu-img', ['create', '-q', '-f', 'qcow2', disk, String(size)]);
        return;
      }
      const base = join(this.imagesDir, spec.image);
      if (!existsSync(base)) throw new AgentError('image_missing', `image "${spec.image}" is not in the node's images directory`);
      const info = JSON.parse((await run('qemu-img', ['info', '--output=json', base])).stdout) as { format: string; 'virtual-size': number };
      // The overlay is never smaller than its base: that would cut the guest's file systems short.
      const args = ['create', '-q', '-f', 'qcow2', '-b', base, '-F', info.format, disk];
      await run('qemu-img', size > info['virtual-size'] ? [...args, String(size)] : args);
    } catch (error) {
      if (error instanceof AgentError) throw error;
      const stderr = (error as { stderr?: string }).stderr?.trim();
      throw new AgentError('disk_failed', `qemu-img could not make the disk of ${spec.vm_id}: ${stderr || (error as Error).message}`, { cause: error });
    }
  }

  /** The QEMU command line: exactly the VM's vCPUs and memory, named after the VM, paths relative to its directory. */
  get accel(): 'kvm' | 'tcg' {
    return this.kvm ? 'kvm' : 'tcg';
  }

  qemuArgs(spec: VmSpec): string[] {
    return [
      '-name', `${spec.vm_id},process=${spec.vm_id}`,
      '-accel', this.accel,
      // No default devices (CD-ROM, VGA, NIC, parallel port): only those listed here.
      '-nodefaults',
      '-smp', String(spec.vcpus),
      '-m', String(spec.memory_mb),
      '-drive', 'file=disk.qcow2,format=qcow2,if=virtio',
      '-nic', 'user,model=virtio-net-pci',
      '-display', 'none',
      // A file chardev with append: the console of an earlier run is kept, not truncated.
      '-chardev', 'file,id=console,path=console.log,append=on',
      '-serial', 'chardev:console',
      '-qmp', 'unix:qmp.sock,server=on,wait=off',
      '-pidfile', 'qemu.pid',
    ]; // prettier-ignore
  }

  /**
   * Launches QEMU unless it runs already. It runs under `sh`, in a session of its own with no tie
   * to the agent's stdio, so killing the agent (even with SIGKILL) leaves it running; the shell
   * stays as its parent to record its exit status for whichever agent looks next.
   */
  async start(vmId: string): Promise<void> {
    const dir = this.vmDir(vmId);
    const spec = this.spec(vmId);
    if (!spec) throw new AgentError('bad_vm_id', `no VM ${vmId} on this node`);
    if (this.livePid(vmId, 'qemu.pid') !== undefined || this.livePid(vmId, 'supervisor.pid') !== undefined) {
      rmSync(join(dir, 'stopped'), { force: true });
      return;
    }
    for (const stale of ['exit-status', 'qemu.pid', 'qmp.sock']) rmSync(join(dir, stale), { force: true });
    const log = openSync(join(dir, 'qemu.log'), 'a');
    try {
      const child = spawn('sh', ['-c', '"$@"; echo $? > exit-status', 'sh', 'qemu-system-x86_64', ...this.qemuArgs(spec)], {
        cwd: dir,
        detached: true,
        stdio: ['ignore', log, log],
      });
      child.on('error', () => {}); // a missing sh shows as a VM that failed without an exit status
      child.unref();
      if (child.pid !== undefined) writeFileSync(join(dir, 'supervisor.pid'), `${child.pid}\n`);
    } finally {
      closeSync(log);
    }
    rmSync(join(dir, 'stopped'), { force: true });
  }

  /** Asks the guest to power off (ACPI); when it has not within the stop timeout, QEMU quits. Idempotent. */
  async stop(vmId: string): Promise<void> {
    const dir = this.vmDir(vmId);
    writeFileSync(join(dir, 'stopped'), '');
    if (this.livePid(vmId, 'qemu.pid') !== undefined) {
      await qmpExecute(join(dir, 'qmp.sock'), 'system_powerdown').catch(() => {});
      if (await this.waitForExit(vmId, this.stopTimeoutMs)) return;
    }
    await this.end(vmId);
  }

  /** Ends QEMU at once (the disk is about to go) and removes the VM's directory. Idempotent. */
  async destroy(vmId: string): Promise<void> {
    const dir = this.vmDir(vmId);
    if (!existsSync(dir)) return;
    writeFileSync(join(dir, 'stopped'), '');
    await this.end(vmId);
    rmSync(dir, { recursive: true, force: true });
  }

  /** QMP quit, then SIGKILL to the shell's whole process group if that did not end it. */
  private async end(vmId: string): Promise<void> {
    const dir = this.vmDir(vmId);
    if (this.livePid(vmId, 'qemu.pid') !== undefined) {
      await qmpExecute(join(dir, 'qmp.sock'), 'quit').catch((error: unknown) => {
        if (!(error instanceof QmpError)) throw error;
      });
      if (await this.waitForExit(vmId, EXIT_GRACE_MS)) return;
    }
    const supervisor = this.livePid(vmId, 'supervisor.pid');
    const qemu = this.livePid(vmId, 'qemu.pid');
    if (supervisor === undefined && qemu === undefined) return;
    try {
      if (supervisor !== undefined) process.kill(-supervisor, 'SIGKILL');
      else process.kill(qemu!, 'SIGKILL');
    } catch {
      // gone in between
    }
    if (!(await this.waitForExit(vmId, EXIT_GRACE_MS))) throw new Error(`QEMU of ${vmId} is still running after SIGKILL`);
  }

  /** Polls until neither QEMU nor its shell runs; false when `timeoutMs` passed first. */
  private async waitForExit(vmId: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.livePid(vmId, 'qemu.pid') === undefined && this.livePid(vmId, 'supervisor.pid') === undefined) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** The pid in the VM's pid file, when that process is alive and is this VM's (see the header). */
  livePid(vmId: string, file: 'qemu.pid' | 'supervisor.pid'): number | undefined {
    let pid: number;
    try {
      pid = Number(readFileSync(join(this.vmDir(vmId), file), 'utf8').trim());
    } catch {
      return undefined;
    }
    if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
    return commandNamesVm(pid, vmId) ? pid : undefined;
  }

  /** What the VM is doing now, read from its directory, its processes and QMP. */
  async observe(vmId: string): Promise<VmObservation> {
    const dir = this.vmDir(vmId);
    if (this.livePid(vmId, 'qemu.pid') !== undefined) {
      try {
        const { status } = await qmpQueryStatus(join(dir, 'qmp.sock'), 1000);
        if (status === 'running') return { vm_id: vmId, state: 'running' };
        if (status === 'guest-panicked' || status === 'internal-error' || status === 'io-error') {
          return { vm_id: vmId, state: 'failed', reason: boundedReason(`QEMU reports the guest ${status}`, this.consoleTail(vmId)) };
        }
      } catch {
        // QMP not listening yet: QEMU is still coming up
      }
      return { vm_id: vmId, state: 'starting' };
    }
    if (this.livePid(vmId, 'supervisor.pid') !== undefined) return { vm_id: vmId, state: 'starting' };
    if (existsSync(join(dir, 'stopped'))) return { vm_id: vmId, state: 'stopped' };
    return { vm_id: vmId, state: 'failed', reason: boundedReason(this.exitSummary(dir), this.consoleTail(vmId)) };
  }

  /** Why QEMU ended: its exit status (the signal named), and the last line it wrote to stderr. */
  private exitSummary(dir: string): string {
    let summary: string;
    try {
      const status = Number(readFileSync(join(dir, 'exit-status'), 'utf8').trim());
      const signal = status > 128 ? Object.entries(osConstants.signals).find(([, n]) => n === status - 128)?.[0] : undefined;
      summary = signal
        ? `QEMU was killed by ${signal} (exit status ${status})`
        : status === 0
          ? 'QEMU exited with status 0 without a stop request (the guest powered itself off)'
          : `QEMU exited with status ${status}`;
    } catch {
      summary = 'QEMU is gone and left no exit status (its shell ended too: killed, or the machine restarted)';
    }
    const stderr = lastLines(readTail(join(dir, 'qemu.log'), 4096), 2);
    return stderr ? `${summary}; QEMU said: ${stderr.slice(-300)}` : summary;
  }

  /** The last 64 KiB of the VM's serial console. */
  consoleTail(vmId: string): Buffer {
    return readTail(join(this.vmDir(vmId), 'console.log'), CONSOLE_TAIL_BYTES);
  }
}

/** Whether `pid` runs a command line with `-name <vm_id>` (or `-name <vm_id>,...`): QEMU, or the sh that runs it. */
function commandNamesVm(pid: number, vmId: string): boolean {
  let args: string[];
  try {
    // A zombie's cmdline is empty: it counts as gone.
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return false;
  }
  return args.some((arg, i) => arg === '-name' && (args[i + 1] === vmId || args[i + 1]?.startsWith(`${vmId},`)));
}

function readTail(file: string, bytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, size - length);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/** The last `n` non-empty lines, printable ASCII only, joined with " | ". */
function lastLines(bytes: Buffer, n: number): string {
  return bytes
    .toString('latin1')
    .replace(/[^\n\x20-\x7e]/g, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(-n)
    .join(' | ');
}

/** `summary`, then as many of the console's last lines as fit in MAX_REASON_BYTES. */
export function boundedReason(summary: string, console: Buffer): string {
  const head = summary.slice(0, MAX_REASON_BYTES);
  const lines = lastLines(console, 10);
  if (!lines) return head;
  const room = MAX_REASON_BYTES - head.length - '; console: '.length;
  return room > 0 ? `${head}; console: ${lines.slice(-room)}` : head;
}
