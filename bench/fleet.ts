/**
 * `npm run bench:fleet` (and part of `npm run bench`): 1,000 simulated node agents heartbeating every
 * 10 s against one real server process (`service-vm-tenant serve`, with its leader jobs: scheduler
 * and unreachable sweep), while GET /v1/vms latency is measured beside the same measurement without
 * heartbeats, in alternating windows of the same run.
 *
 * Three processes: the server; the load generator (bench/fleet-agents.ts, forked: every node has its
 * own key and its own node:agent token issued through the API, enrols through the API and signs every
 * request like the real agent, at nice 19 because it stands for machines elsewhere: at the server's
 * priority it would take the server's core each time an answer woke it); and this one, which sets
 * up through the API, drives the generator and reads GET /v1/vms at a steady rate (an open-loop
 * client: requests leave on a fixed schedule whatever the answers do, latency measured from the
 * moment each is sent to its last byte, in µs).
 *
 * Measuring starts once the fleet has settled: the VMs run, the nodes are ready and a whole interval
 * has passed in which the server answered every heartbeat from memory (its ppn_heartbeats_total),
 * since each change of the warm-up sends every node's next heartbeat through the store once. The
 * report says how many went through the store while measuring.
 *
 * Windows: "without" pauses the generator's clock (no heartbeats), "with" runs it. Odd rounds measure
 * without then with, even rounds with then without. Before each "without" window the heartbeats
 * have run at least one full interval since the last one, so no node ever goes silent long enough
 * for the sweep (30 s) and no round measures a node coming back. Server CPU comes from
 * /proc/PID/stat (user + system), the generator's from its own process.cpuUsage(); how long the
 * server's event-loop thread waited on a run queue for a core from its /proc schedstat.
 *
 * Options: BENCH_FLEET_NODES (1000), BENCH_FLEET_INTERVAL (10 s), BENCH_FLEET_VMS placed on the
 * nodes (50), BENCH_FLEET_READ_RATE GET /v1/vms per second (200 on SQLite),
 * BENCH_FLEET_PG_READ_RATE (50 on PostgreSQL, whose reads alone reach about 170 a second on the
 * project's 2-core machine), BENCH_FLEET_WINDOW seconds per window (5), BENCH_FLEET_ROUNDS (8),
 * BENCH_FLEET_PROFILE=DIR (the server writes a CPU profile there), BENCH_FLEET_STORES (default:
 * sqlite, and postgres too when PPN_TEST_DATABASE_URL names a server, as under `npm run bench`),
 * BENCH_FLEET_GENERATOR_NICE (19), BENCH_FLEET_NODE_FLAGS (node options for the server process),
 * BENCH_FLEET_AGENT_LISTENER (1: the server also serves the agent routes on a second port from a
 * worker thread, `serve --agent-listen`, and the nodes enroll and heartbeat there; 0: on the API port).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generateKeyPairSync } from 'node:crypto';
import type { Agent } from 'node:http';
import { request } from 'node:http';
import { encodeBase64url, rawPublicKey } from '../src/tokens/keys.js';
import type { AgentCommand, AgentEvent, AgentStats } from './fleet-agents.js';
import { expectJson, keepAliveAgent } from './fleet-http.js';
import { freshDatabase } from './ledger.js';
import { median } from './tokens.js';

const NODES = Number(process.env.BENCH_FLEET_NODES ?? 1000);
const INTERVAL_S = Number(process.env.BENCH_FLEET_INTERVAL ?? 10);
const VMS = Number(process.env.BENCH_FLEET_VMS ?? 50);
const READ_RATE = Number(process.env.BENCH_FLEET_READ_RATE ?? 200);
const PG_READ_RATE = Number(process.env.BENCH_FLEET_PG_READ_RATE ?? 50);
const WINDOW_S = Number(process.env.BENCH_FLEET_WINDOW ?? 5);
const ROUNDS = Number(process.env.BENCH_FLEET_ROUNDS ?? 8);
const AGENT_LISTENER = (process.env.BENCH_FLEET_AGENT_LISTENER ?? '1') !== '0';
const TENANT = 'bench-fleet';
/** The API's highest tenant rate limit; heartbeats take 6,000 a minute of it, the reads READ_RATE × 60. */
const RATE_LIMIT_RPM = 100_000;

const here = dirname(fileURLToPath(import.meta.url));
const SERVER_CLI = join(here, '..', 'src', 'cli', 'service-vm-tenant.js');

const log = (line: string): void => void process.stderr.write(`fleet: ${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

interface Server {
  url: URL;
  /** The agent listener's address (`serve --agent-listen`), when BENCH_FLEET_AGENT_LISTENER is on. */
  agentUrl: URL | null;
  pid: number;
  adminToken: string;
  stop(): Promise<void>;
}

async function startServer(databaseUrl: string | undefined): Promise<Server> {
  const dataDir = join(mkdtempSync(join(tmpdir(), 'ppn-bench-fleet-')), '.ppn');
  const args = [SERVER_CLI, 'serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'warn', ...(databaseUrl ? ['--database-url', databaseUrl] : [])];
  if (AGENT_LISTENER) args.push('--agent-listen', '127.0.0.1:0');
  // BENCH_FLEET_PROFILE=DIR: the server writes a CPU profile (.cpuprofile) into DIR when it stops.
  const profile = process.env.BENCH_FLEET_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_FLEET_PROFILE}`] : [];
  const nodeFlags = (process.env.BENCH_FLEET_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeFlags, ...profile, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.on('exit', () => done()));
  // The API's address, then (a moment later) the agent listener's when it is on.
  const [url, agentUrl] = await new Promise<[string, string | null]>((done, fail) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const api = /listening on (http:\/\/[^\s]+:\d+) /.exec(output);
      const agents = /are also served on (http:\/\/[^\s]+:\d+),/.exec(output);
      if (api && (!AGENT_LISTENER || agents)) done([api[1]!, agents ? agents[1]! : null]);
    });
    void exited.then(() => fail(new Error(`server exited:\n${output}`)));
  });
  // The server listens before its first start has written the admin token on PostgreSQL (it makes
  // the key set in the store first): wait for the file rather than read it at once.
  const tokenFile = join(dataDir, 'admin.token');
  for (let waited = 0; !existsSync(tokenFile); waited += 100) {
    if (waited > 60_000 || child.exitCode !== null) throw new Error(`the server wrote no ${tokenFile} within a minute of listening`);
    await sleep(100);
  }
  return {
    url: new URL(url),
    agentUrl: agentUrl === null ? null : new URL(agentUrl),
    pid: child.pid!,
    adminToken: readFileSync(tokenFile, 'utf8').trim(),
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dirname(dataDir), { recursive: true, force: true });
    },
  };
}

const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** A process's CPU time (user + system) so far, in µs, from /proc (the server's own clock ticks). */
function processCpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND) * 1e6;
}

/**
 * How long a process's main thread (the event loop) has waited on a run queue for a core so far, in
 * µs (/proc/PID/task/PID/schedstat, its second field, in ns): ready to run, but another thread had the core.
 */
function runQueueWaitUs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1000;
}

/** One generator process and a way to ask it something and wait for its answer. */
function startGenerator(): { ask(command: AgentCommand): Promise<AgentEvent>; child: ChildProcess } {
  const child = fork(join(here, 'fleet-agents.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting: { done: (event: AgentEvent) => void; fail: (error: Error) => void }[] = [];
  child.on('message', (event: AgentEvent) => waiting.shift()?.done(event));
  child.on('exit', (code) => {
    for (const asker of waiting.splice(0)) asker.fail(new Error(`the generator exited with ${code}`));
  });
  return {
    child,
    ask(command) {
      return new Promise((done, fail) => {
        if (child.exitCode !== null) return fail(new Error(`the generator exited with ${child.exitCode}`));
        waiting.push({ done, fail });
        child.send(command);
      });
    },
  };
}

/**
 * GET /v1/vms at `rate` a second for `seconds`, open loop: each request leaves at its slot (several
 * at once if this process was late), over a keep-alive pool. Answers the latencies in µs.
 */
async function steadyReads(base: URL, agent: Agent, token: string, rate: number, seconds: number): Promise<{ latenciesUs: number[]; errors: number }> {
  const latenciesUs: number[] = [];
  let errors = 0;
  const pending: Promise<void>[] = [];
  const one = (): Promise<void> =>
    new Promise((done) => {
      const started = process.hrtime.bigint();
      const req = request({ host: base.hostname, port: base.port, path: '/v1/vms', headers: { authorization: `Bearer ${token}` }, agent }, (response) => {
        response.resume();
        response.on('end', () => {
          if (response.statusCode === 200) latenciesUs.push(Number(process.hrtime.bigint() - started) / 1000);
          else errors++;
          done();
        });
      });
      req.on('error', () => {
        errors++;
        done();
      });
      req.end();
    });
  const total = Math.round(rate * seconds);
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(one());
  }
  await Promise.all(pending);
  return { latenciesUs, errors };
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface Window {
  heartbeats: boolean;
  seconds: number;
  latenciesUs: number[];
  readErrors: number;
  serverCpuUs: number;
  /** How long the server's event-loop thread waited for a core. */
  serverWaitUs: number;
  generatorCpuUs: number;
  /** Heartbeats answered 200 during the window, and those that were not. */
  beatsOk: number;
  beatErrors: number;
  beatLatenciesMs: number[];
}

const errorCount = (stats: AgentStats): number => Object.values(stats.errors).reduce((a, b) => a + b, 0);

async function measureWindow(
  server: Server,
  generator: ReturnType<typeof startGenerator>,
  readToken: string,
  readRate: number,
  agent: Agent,
  heartbeats: boolean,
): Promise<Window> {
  log(`window ${heartbeats ? 'with' : 'without'} heartbeats, ${WINDOW_S} s`);
  const before = (await generator.ask({ cmd: 'stats' })) as AgentStats;
  const serverBefore = processCpuUs(server.pid);
  const waitBefore = runQueueWaitUs(server.pid);
  const started = performance.now();
  const reads = await steadyReads(server.url, agent, readToken, readRate, WINDOW_S);
  const seconds = (performance.now() - started) / 1000;
  const serverAfter = processCpuUs(server.pid);
  const waitAfter = runQueueWaitUs(server.pid);
  const after = (await generator.ask({ cmd: 'stats' })) as AgentStats;
  return {
    heartbeats,
    seconds,
    latenciesUs: reads.latenciesUs,
    readErrors: reads.errors,
    serverCpuUs: serverAfter - serverBefore,
    serverWaitUs: waitAfter - waitBefore,
    generatorCpuUs: after.cpuUs - before.cpuUs,
    beatsOk: after.ok - before.ok,
    beatErrors: errorCount(after) - errorCount(before),
    beatLatenciesMs: after.latenciesMs,
  };
}

interface Vm {
  vm_id: string;
  state: string;
}
interface NodeItem {
  state: string;
}

async function allPages<T>(base: URL, agent: Agent, token: string, path: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: T[]; next_cursor: string | null } = await expectJson(
      base,
      agent,
      { method: 'GET', path: `${path}${path.includes('?') ? '&' : '?'}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, token },
      200,
    );
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

interface Answered {
  memory: number;
  store: number;
}

/** The server's count of heartbeats answered from memory and through the store (/metrics). */
async function heartbeatsAnswered(base: URL, agent: Agent, token: string): Promise<Answered> {
  // Not JSON: expectJson answers the text as it came.
  const text = await expectJson<string>(base, agent, { method: 'GET', path: '/metrics', token }, 200);
  const count = (how: string): number => {
    const match = new RegExp(`^ppn_heartbeats_total\\{answered="${how}"\\} (\\d+)$`, 'm').exec(text);
    if (!match) throw new Error(`GET /metrics has no ppn_heartbeats_total{answered="${how}"}`);
    return Number(match[1]);
  };
  return { memory: count('memory'), store: count('store') };
}

function ledgerByType(entries: { entry: { event_type: string } }[]): string {
  const counts = new Map<string, number>();
  for (const { entry } of entries) counts.set(entry.event_type, (counts.get(entry.event_type) ?? 0) + 1);
  return entries.length === 0 ? '0' : `${entries.length} (${[...counts].map(([type, n]) => `${n} ${type}`).join(', ')})`;
}

export interface FleetFigures {
  store: string;
  report: string;
}

async function runOn(store: 'SQLite' | 'PostgreSQL', databaseUrl: string | undefined): Promise<FleetFigures> {
  const readRate = store === 'PostgreSQL' ? PG_READ_RATE : READ_RATE;
  const loadBefore = loadavg()[0]!;
  const server = await startServer(databaseUrl);
  const agent = keepAliveAgent(16);
  const generator = startGenerator();
  try {
    const base = server.url;
    const admin = server.adminToken;
    await expectJson(
      base,
      agent,
      {
        method: 'POST',
        path: '/v1/tenants',
        token: admin,
        payload: { tenant_id: TENANT, display_name: 'fleet benchmark', max_vms: 1000, storage_quota_gb: 1_000_000, api_rate_limit_rpm: RATE_LIMIT_RPM },
      },
      201,
    );
    const holder = generateKeyPairSync('ed25519');
    const { token: tenantAdmin } = await expectJson<{ token: string }>(
      base,
      agent,
      {
        method: 'POST',
        path: `/v1/tenants/${TENANT}/tokens`,
        token: admin,
        payload: { subject_pubkey: encodeBase64url(rawPublicKey(holder.publicKey)), scope: 'service:tenant-admin', expires_in_seconds: 86_400 },
      },
      201,
    );
    log(`${store}: enrolling ${NODES} nodes through the API (a node:agent token issued for each node key, then the signed enroll)`);
    const enrolled = (await generator.ask({
      cmd: 'enroll',
      url: base.toString(),
      agentUrl: (server.agentUrl ?? base).toString(),
      tenantId: TENANT,
      tenantAdminToken: tenantAdmin,
      count: NODES,
      intervalS: INTERVAL_S,
    })) as Extract<AgentEvent, { event: 'enrolled' }>;
    log(`${NODES} nodes enrolled in ${enrolled.seconds.toFixed(1)} s; signing one heartbeat costs the generator ${enrolled.signUs.toFixed(0)} µs`);
    for (let i = 0; i < VMS; i++) {
      await expectJson(base, agent, { method: 'POST', path: '/v1/vms', token: tenantAdmin, payload: { name: `vm-${i}`, vcpus: 2, memory_mb: 4096, disk_gb: 20 } }, 201);
    }
    await generator.ask({ cmd: 'start' });
    const warmStart = performance.now();
    log(
      `heartbeats started; warming up until the ${VMS} VMs run on their nodes, all ${NODES} nodes are ready and a whole interval's heartbeats were answered from memory (at least ${2 * INTERVAL_S} s)`,
    );
    // Settled: every change of the warm-up (placements, VMs reported running) moved the tenant's
    // generation, after which each node's next heartbeat goes through the store once.
    let quietSince: number | null = null;
    let lastStoreCount = -1;
    for (;;) {
      await sleep(2000);
      const vms = await allPages<Vm>(base, agent, tenantAdmin, '/v1/vms');
      const nodes = await allPages<NodeItem>(base, agent, tenantAdmin, '/v1/nodes');
      const answered = await heartbeatsAnswered(base, agent, admin);
      const running = vms.filter((vm) => vm.state === 'running').length;
      const ready = nodes.filter((node) => node.state === 'ready').length;
      const now = performance.now();
      const warmS = (now - warmStart) / 1000;
      if (answered.store !== lastStoreCount) quietSince = null;
      else quietSince ??= now;
      lastStoreCount = answered.store;
      const quietS = quietSince === null ? 0 : (now - quietSince) / 1000;
      log(
        `  ${warmS.toFixed(0)} s: ${running}/${VMS} VMs running, ${ready}/${NODES} nodes ready, ${answered.store} heartbeats through the store so far (none for ${quietS.toFixed(0)} s)`,
      );
      if (running === VMS && ready === NODES && warmS >= 2 * INTERVAL_S && quietS >= INTERVAL_S) break;
      if (warmS > 300) throw new Error('the fleet did not settle within 300 s');
    }
    const answeredBefore = await heartbeatsAnswered(base, agent, admin);

    const measureStart = new Date().toISOString();
    const windows: Window[] = [];
    let lastQuietEnd = performance.now() - INTERVAL_S * 1000;
    const withBeats = async (): Promise<void> => {
      await sleep(1000);
      windows.push(await measureWindow(server, generator, tenantAdmin, readRate, agent, true));
    };
    const withoutBeats = async (): Promise<void> => {
      // A full interval of heartbeats since the last pause, so no node's silence ever adds up to the sweep's 30 s.
      const owed = lastQuietEnd + INTERVAL_S * 1000 - performance.now();
      if (owed > 0) await sleep(owed);
      await generator.ask({ cmd: 'pause' });
      await sleep(500); // beats already sent are answered before the window opens
      windows.push(await measureWindow(server, generator, tenantAdmin, readRate, agent, false));
      await generator.ask({ cmd: 'resume' });
      lastQuietEnd = performance.now();
    };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const measure of round % 2 === 1 ? [withoutBeats, withBeats] : [withBeats, withoutBeats]) await measure();
    }
    const final = (await generator.ask({ cmd: 'stats' })) as AgentStats;
    const answeredAfter = await heartbeatsAnswered(base, agent, admin);
    const answeredWhileMeasuring = { memory: answeredAfter.memory - answeredBefore.memory, store: answeredAfter.store - answeredBefore.store };
    const ledger = await allPages<{ entry: { event_type: string } }>(base, agent, admin, `/v1/ledger/entries?since=${encodeURIComponent(measureStart)}`);
    const nodesAfter = await allPages<NodeItem>(base, agent, tenantAdmin, '/v1/nodes');
    return { store, report: report(store, readRate, windows, final, enrolled, ledgerByType(ledger), nodesAfter, loadBefore, answeredWhileMeasuring, agentsAt(server)) };
  } finally {
    await generator.ask({ cmd: 'exit' }).catch(() => undefined);
    generator.child.kill();
    agent.destroy();
    await server.stop();
  }
}

/** Which port the simulated nodes used, for the report. */
function agentsAt(server: Server): string {
  return server.agentUrl
    ? `the agent listener's port ${server.agentUrl.port} (serve --agent-listen: a worker thread; BENCH_FLEET_AGENT_LISTENER=0 for the API port)`
    : `the API port ${server.url.port} (BENCH_FLEET_AGENT_LISTENER=0)`;
}

function report(
  store: string,
  readRate: number,
  windows: Window[],
  final: AgentStats,
  enrolled: { seconds: number; signUs: number },
  ledgerEntries: string,
  nodesAfter: NodeItem[],
  loadBefore: number,
  answered: Answered,
  agentsUsed: string,
): string {
  const on = windows.filter((w) => w.heartbeats);
  const off = windows.filter((w) => !w.heartbeats);
  const sortedOf = (ws: Window[]): number[] => ws.flatMap((w) => w.latenciesUs).sort((a, b) => a - b);
  const allOn = sortedOf(on);
  const allOff = sortedOf(off);
  const ms = (us: number): string => (us / 1000).toFixed(2);
  const sum = (ws: Window[], pick: (w: Window) => number): number => ws.reduce((total, w) => total + pick(w), 0);
  const roundPairs = on.map((w, i) => ({ on: w, off: off[i]! }));
  const p = (w: Window, q: number): number =>
    percentile(
      [...w.latenciesUs].sort((a, b) => a - b),
      q,
    );
  const p50Ratios = roundPairs.map((r) => p(r.on, 0.5) / p(r.off, 0.5));
  const p99Ratios = roundPairs.map((r) => p(r.on, 0.99) / p(r.off, 0.99));
  const beatRate = sum(on, (w) => w.beatsOk) / sum(on, (w) => w.seconds);
  // Server CPU a heartbeat: the with-window's CPU a second above its round's without-window, per heartbeat.
  const cpuPerBeat = roundPairs.map((r) => ((r.on.serverCpuUs / r.on.seconds - r.off.serverCpuUs / r.off.seconds) * r.on.seconds) / Math.max(1, r.on.beatsOk));
  const generatorPerBeat = roundPairs.map(
    (r) => ((r.on.generatorCpuUs / r.on.seconds - r.off.generatorCpuUs / r.off.seconds) * r.on.seconds) / Math.max(1, r.on.beatsOk),
  );
  const beatLatencies = on.flatMap((w) => w.beatLatenciesMs).sort((a, b) => a - b);
  const pooledP50 = percentile(allOn, 0.5) / percentile(allOff, 0.5);
  const pooledP99 = percentile(allOn, 0.99) / percentile(allOff, 0.99);
  const goal = (ratio: number): string => (ratio <= 1.2 ? 'met' : 'not met');
  const list = (values: number[], digits = 2): string => values.map((v) => v.toFixed(digits)).join(', ');
  const ready = nodesAfter.filter((n) => n.state === 'ready').length;
  const lines = [
    `${new Date().toISOString()} — fleet, ${store} — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
    `load average (1 min) ${loadBefore.toFixed(2)} before the server started, ${loadavg()[0]!.toFixed(2)} at the end`,
    `${NODES} nodes (one process, each its own key and node:agent token, every request signed) beating every ${INTERVAL_S} s; ${VMS} VMs placed on them and reported running; enrolment took ${enrolled.seconds.toFixed(1)} s`,
    `GET /v1/vms (${VMS} VMs, tenant-admin bearer token) at a steady ${readRate}/s, open loop; ${ROUNDS} rounds of ${WINDOW_S} s with and ${WINDOW_S} s without heartbeats, alternating`,
    `the nodes enrolled and heartbeat on ${agentsUsed}; GET /v1/vms went to the API port`,
    `tenant api_rate_limit_rpm ${RATE_LIMIT_RPM} (heartbeats take ${(NODES * 60) / INTERVAL_S}/min of it, the reads ${readRate * 60}/min)`,
    '',
    '| measurement | with heartbeats | without | ratio (pooled) | ratio, median of rounds | rounds |',
    '|---|---:|---:|---:|---:|---|',
    `| GET /v1/vms p50 ms | ${ms(percentile(allOn, 0.5))} | ${ms(percentile(allOff, 0.5))} | ${pooledP50.toFixed(2)} | ${median(p50Ratios).toFixed(2)} | ${list(p50Ratios)} |`,
    `| GET /v1/vms p99 ms | ${ms(percentile(allOn, 0.99))} | ${ms(percentile(allOff, 0.99))} | ${pooledP99.toFixed(2)} | ${median(p99Ratios).toFixed(2)} | ${list(p99Ratios)} |`,
    `| GET /v1/vms answered / errors | ${allOn.length} / ${sum(on, (w) => w.readErrors)} | ${allOff.length} / ${sum(off, (w) => w.readErrors)} | | | |`,
    `| server CPU, ms a second | ${(sum(on, (w) => w.serverCpuUs) / sum(on, (w) => w.seconds) / 1000).toFixed(0)} | ${(sum(off, (w) => w.serverCpuUs) / sum(off, (w) => w.seconds) / 1000).toFixed(0)} | | | |`,
    `| server event loop waiting for a core, ms a second | ${(sum(on, (w) => w.serverWaitUs) / sum(on, (w) => w.seconds) / 1000).toFixed(1)} | ${(sum(off, (w) => w.serverWaitUs) / sum(off, (w) => w.seconds) / 1000).toFixed(1)} | | | |`,
    ...[0.9, 0.95, 0.98, 0.99, 0.995, 0.999].map(
      (q) =>
        `| GET /v1/vms p${(q * 100).toFixed(1).replace(/\.0$/, '')} ms | ${ms(percentile(allOn, q))} | ${ms(percentile(allOff, q))} | ${(percentile(allOn, q) / percentile(allOff, q)).toFixed(2)} | | |`,
    ),
    `| generator CPU, ms a second | ${(sum(on, (w) => w.generatorCpuUs) / sum(on, (w) => w.seconds) / 1000).toFixed(0)} | ${(sum(off, (w) => w.generatorCpuUs) / sum(off, (w) => w.seconds) / 1000).toFixed(0)} | | | |`,
    '',
    `heartbeats answered 200 a second during the with-windows: ${beatRate.toFixed(1)} (rounds ${list(
      on.map((w) => w.beatsOk / w.seconds),
      1,
    )}); errors in them: ${sum(on, (w) => w.beatErrors)}`,
    `heartbeats over the whole run: ${final.sent} sent, ${final.ok} answered 200, errors ${JSON.stringify(final.errors)}, ${final.inFlight} unanswered at the end`,
    `heartbeat round trip (generator's view): p50 ${percentile(beatLatencies, 0.5).toFixed(2)} ms, p99 ${percentile(beatLatencies, 0.99).toFixed(2)} ms`,
    `server CPU per heartbeat: ${median(cpuPerBeat).toFixed(0)} µs, median of rounds (${list(cpuPerBeat, 0)}); clock-tick resolution ${(1e6 / TICKS_PER_SECOND / 1000).toFixed(0)} ms per window`,
    `generator CPU per heartbeat: ${median(generatorPerBeat).toFixed(0)} µs, median of rounds (${list(generatorPerBeat, 0)}), of which signing ${enrolled.signUs.toFixed(0)} µs (measured alone)`,
    `ledger entries written while measuring: ${ledgerEntries}; nodes ready at the end: ${ready}/${nodesAfter.length}`,
    `heartbeats answered while measuring (the server's ppn_heartbeats_total): ${answered.memory} from memory, ${answered.store} through the store`,
    `p50 ratio ${pooledP50.toFixed(2)} pooled, ${median(p50Ratios).toFixed(2)} median of rounds; p99 ratio ${pooledP99.toFixed(2)} pooled, ${median(p99Ratios).toFixed(2)} median of rounds (goal ≤ 1.2: p50 ${goal(pooledP50)}, p99 ${goal(pooledP99)})`,
  ];
  return lines.join('\n');
}

export async function runFleetBench(): Promise<void> {
  const stores = (process.env.BENCH_FLEET_STORES ?? (process.env.PPN_TEST_DATABASE_URL ? 'sqlite,postgres' : 'sqlite')).split(',');
  const runs: FleetFigures[] = [];
  if (stores.includes('sqlite')) runs.push(await runOn('SQLite', undefined));
  const adminUrl = process.env.PPN_TEST_DATABASE_URL;
  if (stores.includes('postgres')) {
    if (adminUrl) runs.push(await runOn('PostgreSQL', await freshDatabase(adminUrl, 'fleet')));
    else log('no PostgreSQL (PPN_TEST_DATABASE_URL): skipping the PostgreSQL run');
  }
  for (const run of runs) process.stdout.write(`\n${run.report}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runFleetBench();
