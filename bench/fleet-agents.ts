/**
 * The fleet benchmark's load generator, a process of its own (bench/fleet.ts forks it and drives it
 * over IPC): N simulated node agents, each with its own Ed25519 key and its own `node:agent` token
 * issued through the API, enrolled through the API, then heartbeating every interval, every request
 * signed by its node key as the real agent signs (src/agent/fleet-client.ts).
 *
 * The beats are spread evenly: with 1,000 nodes every 10 s, one beat every 10 ms, node after node.
 * `pause` stops the generator's clock rather than dropping beats, so after `resume` each node beats
 * on at the same spacing and no backlog arrives at once; a pause of a few seconds only lengthens one
 * gap per node by that much (the server's sweep acts after 30 s of silence).
 *
 * A node reports as running exactly the VMs the server placed on it (the last reply's list, those
 * not being deleted), so what it reports always agrees with what the server holds, as a settled real
 * node's would. Its capacity is a 32-CPU, 128 GiB KVM machine whose available memory is what its VMs
 * leave, with ±100 MB of drift per beat (below the 256 MB the server stores), and a varying load.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { setPriority } from 'node:os';
import { systemClock } from '../src/clock.js';
import { keyIdOf, signRequest } from '../src/httpsig/sign.js';
import { encodeBase64url, rawPublicKey } from '../src/tokens/keys.js';
import { expectJson, keepAliveAgent, sendJson } from './fleet-http.js';

export type AgentCommand =
  | {
      cmd: 'enroll';
      /** The API: node tokens are issued there. */
      url: string;
      /** Where the nodes enroll and heartbeat: the agent listener (`serve --agent-listen`), or the API. */
      agentUrl: string;
      tenantId: string;
      tenantAdminToken: string;
      count: number;
      intervalS: number;
    }
  | { cmd: 'start' | 'pause' | 'resume' | 'stats' | 'exit' };

export interface AgentStats {
  event: 'stats';
  /** Heartbeats sent, answered 200, and the others by status (or "network"), since the start. */
  sent: number;
  ok: number;
  errors: Record<string, number>;
  /** This process's CPU time since it started, µs. */
  cpuUs: number;
  /** Heartbeat round-trip times (ms) since the previous stats. */
  latenciesMs: number[];
  /** Beats still waiting for their answer. */
  inFlight: number;
}

export type AgentEvent = { event: 'enrolled'; seconds: number; signUs: number } | { event: 'ok' } | AgentStats;

interface SimNode {
  nodeId: string;
  key: { privateKey: KeyObject; keyid: string };
  token: string;
  /** The VMs the last reply placed here, as this node will report them. */
  vms: { vm_id: string; state: 'running' | 'stopped'; memory_mb: number }[];
}

const CPUS = 32;
const MEMORY_MB = 131_072;
const FREE_WHEN_EMPTY_MB = 126_000;

function capacityOf(node: SimNode) {
  const used = node.vms.reduce((sum, vm) => sum + vm.memory_mb, 0);
  return {
    cpus: CPUS,
    memory_mb_total: MEMORY_MB,
    memory_mb_available: FREE_WHEN_EMPTY_MB - used + Math.round((Math.random() - 0.5) * 200),
    disk_gb_available: 900,
    kvm: true,
    load1: Math.round(Math.random() * 400) / 100,
  };
}

/** Average µs of one signRequest for a heartbeat-sized body: what each beat costs the generator in signing alone. */
function signingCost(key: { privateKey: KeyObject; keyid: string }): number {
  const body = Buffer.from(
    JSON.stringify({ capacity: { cpus: CPUS, memory_mb_total: MEMORY_MB, memory_mb_available: 1, disk_gb_available: 900, kvm: true, load1: 0.5 }, vms: [] }),
  );
  const n = 2000;
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) signRequest({ method: 'POST', path: '/v1/nodes/node-0001/heartbeat', query: '', body }, { ...key, clock: systemClock });
  return Number(process.hrtime.bigint() - started) / 1000 / n;
}

// The generator stands for 1,000 machines elsewhere on the network, yet shares the server's two
// cores here. Each answer it receives wakes it, and at the same priority the kernel often runs it on
// the server's core at once, ahead of the server: the server then waits for the generator, which a
// fleet of remote machines would never make it do. At nice 19 it runs when a core is free.
setPriority(Number(process.env.BENCH_FLEET_GENERATOR_NICE ?? 19));

const nodes: SimNode[] = [];
const agent = keepAliveAgent(64);
let base = new URL('http://127.0.0.1');
/** Where enrolls and heartbeats go. */
let agentBase = base;
let periodMs = 10;
let sent = 0;
let ok = 0;
let inFlight = 0;
const errors: Record<string, number> = {};
let latencies: number[] = [];
/** The generator's own clock: runs only between start/resume and pause. */
let clockBase = 0;
let runningSince: number | null = null;
let ticker: NodeJS.Timeout | undefined;

function fail(what: string): void {
  errors[what] = (errors[what] ?? 0) + 1;
}

async function enroll(command: Extract<AgentCommand, { cmd: 'enroll' }>): Promise<AgentEvent> {
  base = new URL(command.url);
  agentBase = new URL(command.agentUrl);
  periodMs = (command.intervalS * 1000) / command.count;
  const started = Date.now();
  let done = 0;
  const one = async (i: number): Promise<SimNode> => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const nodeId = `node-${String(i + 1).padStart(4, '0')}`;
    const issued = await expectJson<{ token: string }>(
      base,
      agent,
      {
        method: 'POST',
        path: `/v1/tenants/${command.tenantId}/tokens`,
        token: command.tenantAdminToken,
        payload: { subject_pubkey: encodeBase64url(rawPublicKey(publicKey)), scope: 'node:agent', expires_in_seconds: 43_200, proof_of_possession: true, name: nodeId },
      },
      201,
    );
    const node: SimNode = { nodeId, key: { privateKey, keyid: keyIdOf(privateKey) }, token: issued.token, vms: [] };
    await expectJson(
      agentBase,
      agent,
      { method: 'POST', path: '/v1/nodes', token: node.token, signer: node.key, payload: { node_id: nodeId, capacity: capacityOf(node) } },
      201,
    );
    if (++done % 100 === 0) process.stderr.write(`fleet: ${done}/${command.count} nodes enrolled (${((Date.now() - started) / 1000).toFixed(0)} s)\n`);
    return node;
  };
  // A few at a time, as several operators enrolling machines would; each is a token issue and an enroll, each a ledger entry.
  const lanes = 4;
  const results: SimNode[][] = await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      const mine: SimNode[] = [];
      for (let i = lane; i < command.count; i += lanes) mine.push(await one(i));
      return mine;
    }),
  );
  nodes.push(...results.flat().sort((a, b) => a.nodeId.localeCompare(b.nodeId)));
  return { event: 'enrolled', seconds: (Date.now() - started) / 1000, signUs: signingCost(nodes[0]!.key) };
}

async function beat(node: SimNode): Promise<void> {
  sent++;
  inFlight++;
  const observed = node.vms.map((vm) => ({ vm_id: vm.vm_id, state: vm.state }));
  const started = process.hrtime.bigint();
  try {
    const answer = await sendJson(agentBase, agent, {
      method: 'POST',
      path: `/v1/nodes/${node.nodeId}/heartbeat`,
      token: node.token,
      signer: node.key,
      payload: { capacity: capacityOf(node), vms: observed },
    });
    latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
    if (answer.status !== 200) return fail(String(answer.status));
    ok++;
    const reply = answer.body as { vms: { vm_id: string; memory_mb: number; desired_state: string }[] };
    node.vms = reply.vms
      .filter((vm) => vm.desired_state !== 'deleted')
      .map((vm) => ({ vm_id: vm.vm_id, memory_mb: vm.memory_mb, state: vm.desired_state === 'stopped' ? 'stopped' : 'running' }));
  } catch {
    fail('network');
  } finally {
    inFlight--;
  }
}

function clockMs(): number {
  return clockBase + (runningSince === null ? 0 : performance.now() - runningSince);
}

/** Sends every beat the generator's clock has come to (more than one only when this process was late). */
function tick(): void {
  const due = Math.floor(clockMs() / periodMs);
  while (sent < due) void beat(nodes[sent % nodes.length]!);
}

function run(): void {
  runningSince = performance.now();
  ticker ??= setInterval(tick, 2);
}

function pause(): void {
  clockBase = clockMs();
  runningSince = null;
}

function stats(): AgentStats {
  const cpu = process.cpuUsage();
  const drained = latencies;
  latencies = [];
  return { event: 'stats', sent, ok, errors: { ...errors }, cpuUs: cpu.user + cpu.system, latenciesMs: drained, inFlight };
}

process.on('message', (message: AgentCommand) => {
  const reply = (event: AgentEvent): void => void process.send!(event);
  switch (message.cmd) {
    case 'enroll':
      enroll(message).then(reply, (error: Error) => {
        process.stderr.write(`fleet: enrollment failed: ${error.message}\n`);
        process.exit(1);
      });
      return;
    case 'start':
    case 'resume':
      run();
      return reply({ event: 'ok' });
    case 'pause':
      pause();
      return reply({ event: 'ok' });
    case 'stats':
      return reply(stats());
    case 'exit':
      clearInterval(ticker);
      agent.destroy();
      process.exit(0);
  }
});
