/**
 * The agent as a process (`service-vm-host enroll` and `run`, built dist/) against a stand-in for
 * the server's fleet routes: a real HTTP server in the test that checks every request's RFC 9421
 * signature by the node key (as the server does for node:agent tokens) and answers heartbeats
 * with a desired list the test sets. The VMs are real QEMU guests. The real server's side of the
 * protocol is tested with its routes; this checks that the agent speaks it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { verifyRequestSignature } from '../../src/httpsig/verify.js';
import type { DesiredVm } from '../../src/agent/reconcile.js';
import { GUEST_LINE } from '../support/guest-image.js';
import { commandLine, eventually, guestSpec, guestStateDir, killGuests, processAlive } from '../support/qemu-guests.js';
import { CLI, runCliAsync } from '../support/server-process.js';

interface Received {
  method: string;
  path: string;
  body: Record<string, unknown>;
}

/** The stand-in server: records verified requests; answers heartbeats with `desired`. */
class FleetStandIn {
  received: Received[] = [];
  desired: DesiredVm[] = [];
  refused = 0;
  nodeKey = '';
  server!: Server;
  url = '';

  async listen(): Promise<void> {
    const seen = new Set<string>();
    this.server = createServer((request, response) => {
      void this.handle(request, seen).then(
        ([status, body]) => {
          response.writeHead(status, { 'content-type': status < 300 ? 'application/json' : 'application/problem+json' });
          response.end(JSON.stringify(body));
        },
        () => {
          response.writeHead(500);
          response.end();
        },
      );
    });
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async handle(request: IncomingMessage, seen: Set<string>): Promise<[number, unknown]> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const { path, query } = splitTarget(request.url!);
    try {
      if (request.headers.authorization !== 'Bearer pct1.stand-in-token') throw new Error('no token');
      await verifyRequestSignature(
        { method: request.method!, path, query, headers: request.headers, body },
        { holderKey: this.nodeKey, clock: systemClock, acceptNonce: async (_k, nonce) => !seen.has(nonce) && !!seen.add(nonce) },
      );
    } catch {
      this.refused++;
      return [401, { title: 'Unauthorized' }];
    }
    const parsed = JSON.parse(body.toString()) as Record<string, unknown>;
    this.received.push({ method: request.method!, path, body: parsed });
    if (request.method === 'POST' && path === '/v1/nodes') return [201, { node_id: parsed.node_id, state: 'ready' }];
    if (path.endsWith('/heartbeat')) return [200, { node: { node_id: 'compute-test-01' }, heartbeat_interval_s: 10, vms: this.desired }];
    if (path.endsWith('/console')) return [204, {}];
    return [404, { title: 'Not Found' }];
  }

  heartbeats(): Received[] {
    return this.received.filter((r) => r.path.endsWith('/heartbeat'));
  }

  lastObserved(vmId: string): { state: string; reason?: string } | undefined {
    const last = this.heartbeats().at(-1);
    return (last?.body.vms as { vm_id: string; state: string; reason?: string }[] | undefined)?.find((vm) => vm.vm_id === vmId);
  }
}

const stand = new FleetStandIn();
const stateDir = guestStateDir();
const agents: ChildProcess[] = [];

function host(...args: string[]) {
  return runCliAsync(CLI.host, [...args, '--state-dir', stateDir]);
}

/** `service-vm-host run` with a 1 s heartbeat, under TCG (see test/support/qemu-guests.ts); its output is kept for failure messages. */
function startAgent(): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI.host, 'run', '--state-dir', stateDir, '--heartbeat-interval', '1', '--stop-timeout', '1', '--accel', 'tcg'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  agents.push(child);
  return Object.assign(child, { output: () => output });
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((done) => child.once('exit', (code) => done(code)));
}

async function observedAs(vmId: string, state: string): Promise<void> {
  const before = stand.heartbeats().length;
  await eventually(`${vmId} reported ${state}`, () => (stand.heartbeats().length > before && stand.lastObserved(vmId)?.state === state ? true : undefined));
}

beforeAll(async () => {
  await stand.listen();
  const init = await host('init');
  expect(init.status).toBe(0);
  stand.nodeKey = init.stdout.trim();
});

afterAll(async () => {
  for (const agent of agents) if (agent.exitCode === null) agent.kill('SIGKILL');
  killGuests();
  await new Promise((done) => stand.server.close(done));
});

describe('service-vm-host against a stand-in fleet server', () => {
  it('enroll sends node_id and the capacity, signed by the node key, and keeps the token 0600', async () => {
    const result = await host('enroll', '--server', stand.url, '--token', 'pct1.stand-in-token', '--node-id', 'compute-test-01');
    expect(result.stderr).toContain('enrolled as compute-test-01');
    expect(result.status).toBe(0);
    const [enroll] = stand.received;
    expect(enroll).toMatchObject({ method: 'POST', path: '/v1/nodes', body: { node_id: 'compute-test-01' } });
    expect(Object.keys(enroll!.body.capacity as object).sort()).toEqual(['cpus', 'disk_gb_available', 'kvm', 'load1', 'memory_mb_available', 'memory_mb_total']);
    expect(statSync(join(stateDir, 'enrollment.json')).mode & 0o777).toBe(0o600);
    expect(stand.refused).toBe(0);
  });

  it('run creates and starts a desired VM, reports it running, uploads its console, and survives its own SIGKILL without relaunching QEMU', async () => {
    stand.desired = [{ ...guestSpec('vm-agent-1'), desired_state: 'running' }];
    let agent = startAgent();
    await observedAs('vm-agent-1', 'running').catch((error: Error) => {
      throw new Error(`${error.message}\n${agent.output()}`);
    });
    const heartbeat = stand.heartbeats().at(-1)!;
    expect(heartbeat.path).toBe('/v1/nodes/compute-test-01/heartbeat');
    await eventually('a console upload with the guest line', () =>
      stand.received.some(
        (r) =>
          r.method === 'PUT' &&
          r.path === '/v1/nodes/compute-test-01/vms/vm-agent-1/console' &&
          Buffer.from(r.body.data as string, 'base64')
            .toString()
            .includes(GUEST_LINE),
      )
        ? true
        : undefined,
    );
    const qemuPid = Number(readFileSync(join(stateDir, 'vms', 'vm-agent-1', 'qemu.pid'), 'utf8'));
    expect(commandLine(qemuPid)).toContain('-name');

    agent.kill('SIGKILL');
    await exited(agent);
    expect(processAlive(qemuPid)).toBe(true);
    agent = startAgent();
    await observedAs('vm-agent-1', 'running');
    expect(Number(readFileSync(join(stateDir, 'vms', 'vm-agent-1', 'qemu.pid'), 'utf8'))).toBe(qemuPid);
    expect(processAlive(qemuPid)).toBe(true);

    // SIGTERM ends the agent and leaves the VM running.
    agent.kill('SIGTERM');
    expect(await exited(agent)).toBe(0);
    expect(processAlive(qemuPid)).toBe(true);
  });

  it('run stops, starts and deletes as the desired list says, and reports a killed QEMU failed with its reason', async () => {
    const agent = startAgent();
    stand.desired = [{ ...guestSpec('vm-agent-1'), desired_state: 'stopped' }];
    await observedAs('vm-agent-1', 'stopped');
    stand.desired = [{ ...guestSpec('vm-agent-1'), desired_state: 'running' }];
    await observedAs('vm-agent-1', 'running');

    const qemuPid = Number(readFileSync(join(stateDir, 'vms', 'vm-agent-1', 'qemu.pid'), 'utf8'));
    process.kill(qemuPid, 'SIGKILL');
    await observedAs('vm-agent-1', 'failed');
    expect(stand.lastObserved('vm-agent-1')!.reason).toMatch(/SIGKILL/);

    stand.desired = [{ ...guestSpec('vm-agent-1'), desired_state: 'deleted' }];
    await eventually('vm-agent-1 gone from the heartbeat', () =>
      stand.heartbeats().length > 0 && !stand.lastObserved('vm-agent-1') && !existsSync(join(stateDir, 'vms', 'vm-agent-1')) ? true : undefined,
    );
    agent.kill('SIGTERM');
    expect(await exited(agent)).toBe(0);
    expect(stand.refused).toBe(0);
  });
});
