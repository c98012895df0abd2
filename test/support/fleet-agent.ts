/**
 * A real node agent (`service-vm-host`, built dist/) beside a real server process: a state directory
 * with the test guest as a base image, `init`, a node:agent token issued by the tenant's admin for
 * the printed key, `enroll`, and `run` as a child process under TCG with a 1 s heartbeat. The
 * agents and their QEMU processes are killed by `stopAgents` (afterAll), whatever the test did.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GUEST_IMAGE, commandLine, guestStateDir, killGuests } from './qemu-guests.js';
import { api, CLI, runCliAsync, type ServerProcess } from './server-process.js';

export { GUEST_IMAGE };

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null after a signal). */
  exited(): Promise<number | null>;
}

export interface FleetNode {
  stateDir: string;
  nodeId: string;
  /** Starts `service-vm-host run` on the node's state directory. */
  run(): AgentProcess;
  /** QEMU's pid of a VM, from its pid file. */
  qemuPid(vmId: string): number;
  /** `enroll` with a new node:agent token for the node's key, as for a node enrolled again. */
  enroll(): Promise<void>;
  /** The id of the node:agent token the last `enroll` used. */
  tokenId: string;
}

const agents: ChildProcess[] = [];

/** A new node of `tenantId`: init, a node:agent token from `adminToken`, enroll. */
export async function enrolledNode(server: ServerProcess, tenantId: string, nodeId: string, adminToken = server.adminToken): Promise<FleetNode> {
  const stateDir = guestStateDir();
  const host = (...args: string[]) => runCliAsync(CLI.host, [...args, '--state-dir', stateDir]);
  const init = await host('init');
  if (init.status !== 0) throw new Error(`init: ${init.stderr}`);
  const publicKey = init.stdout.trim();
  const node: FleetNode = {
    stateDir,
    nodeId,
    run: () => startAgent(stateDir),
    qemuPid: (vmId) => Number(readFileSync(join(stateDir, 'vms', vmId, 'qemu.pid'), 'utf8').trim()),
    async enroll() {
      const issued = await api(server.url, 'POST', `/v1/tenants/${tenantId}/tokens`, {
        token: adminToken,
        body: { subject_pubkey: publicKey, scope: 'node:agent', expires_in_seconds: 3600 },
      });
      if (issued.status !== 201) throw new Error(`issuing the node token: ${issued.status} ${JSON.stringify(issued.body)}`);
      const enroll = await host('enroll', '--server', server.url, '--token', issued.body.token, '--node-id', nodeId);
      if (enroll.status !== 0) throw new Error(`enroll: ${enroll.stderr}`);
      node.tokenId = issued.body.token_id;
    },
    tokenId: '',
  };
  await node.enroll();
  return node;
}

function startAgent(stateDir: string): AgentProcess {
  const child = spawn(process.execPath, [CLI.host, 'run', '--state-dir', stateDir, '--heartbeat-interval', '1', '--stop-timeout', '1', '--accel', 'tcg'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  agents.push(child);
  return { child, output: () => output, exited: () => exit };
}

/** SIGKILL to every agent started here, then every QEMU process of their VMs; the state directories go. */
export function stopAgents(): void {
  for (const agent of agents.splice(0)) if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
  killGuests();
}

/** The pids of the live QEMU processes whose command line carries `-name <vmId>...`. */
export function qemuProcessesOf(vmId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = commandLine(Number(entry));
    } catch {
      continue; // ended meanwhile
    }
    const name = argv.indexOf('-name');
    if (argv[0]?.includes('qemu-system') && name >= 0 && argv[name + 1]?.split(',')[0] === vmId) pids.push(Number(entry));
  }
  return pids;
}
