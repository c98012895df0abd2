/**
 * `ppn vm list | show | create | start | stop | delete | console`: VMs over the API (docs/api.md,
 * VMs), by name or by id. `--wait` polls the VM until it reaches the state asked for, showing its
 * progress on stderr; it fails with the VM's `reason` when the VM fails, and after `--timeout` when
 * it is still on its way (a VM stays `pending` while no fleet node can run it).
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { CliError, EXIT_USAGE } from './command-line.js';
import { formatDuration, parseDuration } from './durations.js';
import { printJson, printList, printRecord, Progress, type Column } from './output.js';
import { serverCommand, withTenant, type CallOptions } from './ppn-options.js';
import { ProblemError, type ApiClient } from './client.js';
import type { VmRecord as Vm } from '../records.js';

interface VmOptions extends CallOptions {
  tenant?: string;
}

interface WaitOptions extends VmOptions {
  wait: boolean;
  timeout: number;
}

const VM_ID = /^vm-[0-9a-z]{26}$/;
const DEFAULT_WAIT_SECONDS = 300;
const POLL_MS = 1000;

/** The VM a name or an id stands for; a platform admin with the name in several tenants must say which. */
export async function findVm(client: ApiClient, nameOrId: string, options: VmOptions): Promise<Vm> {
  if (VM_ID.test(nameOrId)) return (await client.request<Vm>('GET', withTenant(`/v1/vms/${nameOrId}`, options.tenant))).body;
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(nameOrId)) throw new CliError(`"${nameOrId}" is neither a VM name (a DNS label) nor a VM id (vm-…)`, EXIT_USAGE);
  const found = (await client.request<{ items: Vm[] }>('GET', withTenant(`/v1/vms?name=${nameOrId}`, options.tenant))).body.items;
  if (found.length === 0) throw new CliError(`no VM named ${nameOrId}${options.tenant ? ` in tenant ${options.tenant}` : ''}; "ppn vm list" shows them`);
  if (found.length > 1) throw new CliError(`VMs named ${nameOrId} are in tenants ${found.map((vm) => vm.tenant_id).join(', ')}: add --tenant TENANT`, EXIT_USAGE);
  return found[0]!;
}

function megabytes(value: string): number {
  const match = /^(\d{1,10})\s*(m|mb|mib|g|gb|gib)?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError('--memory wants megabytes, or a size such as 512M or 2G');
  return Number(match[1]) * (/^g/i.test(match[2] ?? '') ? 1024 : 1);
}

function gigabytes(value: string): number {
  const match = /^(\d{1,10})\s*(g|gb|gib)?$/i.exec(value.trim());
  if (!match) throw new InvalidArgumentError('--disk wants gigabytes, e.g. 10 or 10G');
  return Number(match[1]);
}

function whole(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d{1,6}$/.test(value)) throw new InvalidArgumentError(`${name} wants a whole number`);
    return Number(value);
  };
}

/** Why a VM is not there yet, in words. */
function explain(vm: Vm): string {
  if (vm.state === 'pending') return `: no node can run it yet${vm.reason ? ` (${vm.reason})` : ''}`;
  if (vm.state === 'unknown') return ': its node is unreachable';
  return vm.reason ? ` (${vm.reason})` : '';
}

/**
 * Polls the VM until it is `target` (`deleted`: until it is gone), showing each state it passes
 * through. Fails when it becomes `failed`, when its desired state changes away from the target, or
 * after `timeoutSeconds`.
 */
export async function waitForVm(client: ApiClient, vm: Vm, target: 'running' | 'stopped' | 'deleted', timeoutSeconds: number, quiet: boolean): Promise<Vm | null> {
  const progress = new Progress();
  const started = Date.now();
  let last = '';
  let current: Vm | null = vm;
  for (;;) {
    if (current === null) {
      if (!quiet) progress.show(`${vm.name}: deleted`, true);
      progress.done();
      return null;
    }
    if (current.state === target) {
      if (!quiet) progress.show(`${vm.name}: ${target} after ${formatDuration((Date.now() - started) / 1000)}`, true);
      progress.done();
      return current;
    }
    if (current.state === 'failed' && target !== 'deleted') {
      progress.done();
      throw new CliError(`${vm.name} failed: ${current.reason ?? 'no reason given'}`);
    }
    const wanted = target === 'deleted' ? 'deleted' : target;
    if (current.desired_state !== wanted) {
      progress.done();
      throw new CliError(`${vm.name} is now meant to be ${current.desired_state}, not ${target}: someone changed it while waiting`);
    }
    const elapsed = (Date.now() - started) / 1000;
    const status = `${current.state}${explain(current)}`;
    if (!quiet) progress.show(`waiting for ${vm.name} to be ${target} (${formatDuration(elapsed)}): ${status}`, status !== last);
    last = status;
    if (elapsed >= timeoutSeconds) {
      progress.done();
      throw new CliError(`gave up after ${formatDuration(timeoutSeconds)}: ${vm.name} is still ${status}; --timeout waits longer`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      current = (await client.request<Vm>('GET', `/v1/vms/${vm.vm_id}`)).body;
    } catch (error) {
      if (target === 'deleted' && error instanceof ProblemError && error.problem.status === 404) current = null;
      else throw error;
    }
  }
}

function showVm(options: CallOptions, vm: Vm): void {
  printRecord(options, vm, vm.vm_id, [
    ['name', vm.name],
    ['id', vm.vm_id],
    ['tenant', vm.tenant_id],
    ['state', `${vm.state}${vm.state === vm.desired_state ? '' : ` (desired: ${vm.desired_state})`}`],
    ...(vm.reason ? ([['reason', vm.reason]] as [string, string][]) : []),
    ['node', vm.node_id ?? '-'],
    ['vcpus', String(vm.vcpus)],
    ['memory', `${vm.memory_mb} MB`],
    ['disk', `${vm.disk_gb} GB`],
    ['image', vm.image ?? '-'],
    ['created', vm.created_by === null ? vm.created_at : `${vm.created_at} by ${vm.created_by}`],
  ]);
}

function columns(rows: Vm[]): Column<Vm>[] {
  const tenants = new Set(rows.map((vm) => vm.tenant_id));
  return [
    ...(tenants.size > 1 ? [{ heading: 'TENANT', value: (vm: Vm) => vm.tenant_id, shrink: true }] : []),
    { heading: 'NAME', value: (vm) => vm.name, shrink: true },
    { heading: 'STATE', value: (vm) => vm.state },
    { heading: 'VCPUS', value: (vm) => String(vm.vcpus) },
    { heading: 'MEMORY', value: (vm) => `${vm.memory_mb} MB` },
    { heading: 'DISK', value: (vm) => `${vm.disk_gb} GB` },
    { heading: 'NODE', value: (vm) => vm.node_id ?? '-', shrink: true },
    { heading: 'REASON', value: (vm) => vm.reason ?? '', shrink: true },
  ];
}

/** After a change: the VM as JSON, its id, or its state; with --wait, once it has got there. */
async function finish(client: ApiClient, options: WaitOptions, vm: Vm | null, target: 'running' | 'stopped' | 'deleted'): Promise<void> {
  const reached = options.wait && vm ? await waitForVm(client, vm, target, options.timeout, options.quiet === true) : vm;
  if (options.json) printJson(reached);
  else if (options.quiet) process.stdout.write(vm ? `${vm.vm_id}\n` : '');
  else if (reached) process.stdout.write(`${reached.name}  ${reached.vm_id}  ${reached.state}${explain(reached)}\n`);
}

const tenantOption = ['--tenant <tenant>', "the VM's tenant (a platform admin's token; a tenant's own token needs none)"] as const;
const waitOptions = (command: Command, what: string) =>
  command
    .option('--wait', `wait until the VM is ${what}, showing its progress`, false)
    .option('--timeout <duration>', 'with --wait: how long to wait, e.g. 90s, 10m', parseDuration('--timeout', 7 * 86_400), DEFAULT_WAIT_SECONDS);

export function registerVm(program: Command): void {
  const vm = program.command('vm').description('list, create, start, stop, delete VMs and read their consoles; names work wherever ids do');

  serverCommand(
    vm
      .command('list')
      .description("the tenant's VMs (a platform admin: every tenant's, or --tenant's)")
      .option(...tenantOption),
    ['ppn vm list', 'ppn vm list --json | jq -r ".[].name"'],
    async (client: ApiClient, options: VmOptions) => {
      const vms = await client.listAll<Vm>(withTenant('/v1/vms?limit=1000', options.tenant));
      printList(options, vms, columns(vms), (row) => row.vm_id);
    },
  );

  serverCommand(
    vm
      .command('show')
      .argument('<vm>', 'name or id')
      .description('one VM')
      .option(...tenantOption),
    ['ppn vm show web-1'],
    async (client: ApiClient, options: VmOptions, name: string) => showVm(options, await findVm(client, name, options)),
  );

  serverCommand(
    waitOptions(
      vm
        .command('create')
        .argument('<name>', 'a DNS label, unique in the tenant')
        .description('create a VM; the scheduler places it on a fleet node that has room')
        .option('--vcpus <n>', 'vCPUs (default 1)', whole('--vcpus'))
        .option('--memory <size>', 'memory in MB, or 512M, 2G (default 1024 MB)', megabytes)
        .option('--disk <size>', 'disk in GB (default 10)', gigabytes)
        .option('--image <image>', 'a base image the node has')
        .option('--node <node>', 'pin it to this node')
        .option(...tenantOption),
      'running',
    ),
    ['ppn vm create web-1 --vcpus 2 --memory 2G --disk 20', 'ppn vm create web-1 --wait --timeout 5m'],
    async (client: ApiClient, options: WaitOptions & { vcpus?: number; memory?: number; disk?: number; image?: string; node?: string }, name: string) => {
      const body = {
        name,
        ...(options.vcpus !== undefined ? { vcpus: options.vcpus } : {}),
        ...(options.memory !== undefined ? { memory_mb: options.memory } : {}),
        ...(options.disk !== undefined ? { disk_gb: options.disk } : {}),
        ...(options.image !== undefined ? { image: options.image } : {}),
        ...(options.node !== undefined ? { node_id: options.node } : {}),
      };
      const created = (await client.request<Vm>('POST', withTenant('/v1/vms', options.tenant), body)).body;
      await finish(client, options, created, 'running');
    },
  );

  for (const [verb, target] of [
    ['start', 'running'],
    ['stop', 'stopped'],
  ] as const) {
    serverCommand(
      waitOptions(
        vm
          .command(verb)
          .argument('<vm>', 'name or id')
          .description(`${verb} a VM: its node ${verb}s it at its next heartbeat`)
          .option(...tenantOption),
        target,
      ),
      [`ppn vm ${verb} web-1`, `ppn vm ${verb} web-1 --wait`],
      async (client: ApiClient, options: WaitOptions, name: string) => {
        const found = await findVm(client, name, options);
        await finish(client, options, (await client.request<Vm>('POST', `/v1/vms/${found.vm_id}/${verb}`)).body, target);
      },
    );
  }

  serverCommand(
    waitOptions(
      vm
        .command('delete')
        .argument('<vm>', 'name or id')
        .description('delete a VM; one placed on a node goes once the node has destroyed it')
        .option(...tenantOption),
      'gone',
    ),
    ['ppn vm delete web-1', 'ppn vm delete web-1 --wait'],
    async (client: ApiClient, options: WaitOptions, name: string) => {
      const found = await findVm(client, name, options);
      const answer = await client.request<Vm | null>('DELETE', `/v1/vms/${found.vm_id}`);
      const deleting = answer.status === 202 ? answer.body : null;
      if (options.wait && deleting) await waitForVm(client, deleting, 'deleted', options.timeout, options.quiet === true);
      const gone = answer.status === 204 || options.wait;
      if (options.json) printJson(gone ? { vm_id: found.vm_id, deleted: true } : deleting);
      else if (options.quiet) process.stdout.write(`${found.vm_id}\n`);
      else process.stdout.write(`${found.name}  ${found.vm_id}  ${gone ? 'deleted' : 'deleting: its node destroys it at its next heartbeat'}\n`);
    },
  );

  serverCommand(
    vm
      .command('console')
      .argument('<vm>', 'name or id')
      .description("the VM's serial console as its node last uploaded it (the last 64 KiB)")
      .option('--follow', 'keep printing what the console adds, until interrupted', false)
      .option(...tenantOption),
    ['ppn vm console web-1', 'ppn vm console web-1 --follow'],
    async (client: ApiClient, options: VmOptions & { follow: boolean }, name: string) => {
      const found = await findVm(client, name, options);
      let shown = Buffer.alloc(0);
      let seen: string | null = null;
      for (;;) {
        const console = (await client.request<{ data: string; updated_at: string | null }>('GET', `/v1/vms/${found.vm_id}/console`)).body;
        if (options.json && !options.follow) return printJson(console);
        if (console.updated_at !== seen) {
          const data = Buffer.from(console.data, 'base64');
          process.stdout.write(addedOutput(shown, data));
          shown = data;
          seen = console.updated_at;
        }
        if (!options.follow) return;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    },
  );
}

/**
 * What `next` (the console's last 64 KiB now) adds to `previous` (as last shown). The window only
 * grows at its end and drops bytes at its start, so `next` begins with a suffix of `previous` (all
 * of it until the window is full): the earliest such suffix is what was shown. When none is, the
 * console was reset, and all of `next` is new.
 */
export function addedOutput(previous: Buffer, next: Buffer): Buffer {
  const probe = next.subarray(0, 1);
  for (let at = previous.indexOf(probe); at >= 0; at = previous.indexOf(probe, at + 1)) {
    const shown = previous.subarray(at);
    if (shown.length <= next.length && next.subarray(0, shown.length).equals(shown)) return next.subarray(shown.length);
  }
  return next;
}
