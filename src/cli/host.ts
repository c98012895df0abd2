/**
 * The actions of `service-vm-host` (SPEC §7): `init` makes the node key, `enroll` registers the node
 * with a server and remembers how, `run` is the heartbeat loop. The agent itself is in src/agent/.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import pino from 'pino';
import { systemClock } from '../clock.js';
import { readCapacity } from '../agent/capacity.js';
import { AgentError } from '../agent/error.js';
import { FleetClient, parseServerUrl } from '../agent/fleet-client.js';
import { VERSION, warnOfVersionSkew } from '../version.js';
import { runHeartbeatLoop } from '../agent/heartbeat-loop.js';
import { QemuDriver } from '../agent/qemu.js';
import { Reconciler } from '../agent/reconcile.js';
import { nodeKeyFile, prepareStateDir, readEnrollment, requireNodeKey, writeEnrollment } from '../agent/state-dir.js';
import { plainHttpRefusal, readCaFile } from '../tls/client.js';
import { CliError } from './common.js';
import { readCaOption } from './command-line.js';
import { readPrivateKey, readToken } from './holder.js';
import { writeKeyPair } from './keygen.js';

/** A node id names the node in URLs and in the tenant's list: a DNS-label-like name. */
const NODE_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Agent errors are the operator's to fix: a message and exit status 1. */
async function asCliErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AgentError) throw new CliError(error.message, 1, { cause: error });
    throw error;
  }
}

export function initNode(stateDir: string): void {
  const key = nodeKeyFile(stateDir);
  if (existsSync(key)) throw new CliError(`${key} exists: this node has its key already (its public key is in ${key}.pub); init never replaces it`);
  prepareStateDir(stateDir);
  process.stdout.write(`${writeKeyPair(key)}\n`);
}

export interface EnrollOptions {
  server: string;
  token: string;
  nodeId: string;
  /** The CA file that signs the server's certificate; remembered for `run`. */
  ca?: string | undefined;
  insecure?: boolean | undefined;
}

export function enrollNode(stateDir: string, options: EnrollOptions): Promise<void> {
  return asCliErrors(async () => {
    if (!NODE_ID.test(options.nodeId))
      throw new CliError(`--node-id wants a name of lowercase letters, digits and "-" such as compute-west-01; got "${options.nodeId}"`, 2);
    const insecure = options.insecure === true;
    const refusal = plainHttpRefusal(parseServerUrl(options.server, true), insecure);
    if (refusal) throw new CliError(refusal, 2);
    const ca = readCaOption(options.ca);
    const privateKey = readPrivateKey(requireNodeKey(stateDir));
    const token = readToken(options.token, '--token');
    const client = new FleetClient({ server: options.server, token, privateKey, clock: systemClock, tls: { ca }, insecure });
    const node = await client.enroll(options.nodeId, readCapacity(stateDir));
    await warnOfVersionSkew(
      'agent',
      () => client.serverVersion(),
      (warning) => process.stderr.write(`${warning}\n`),
    );
    const caFile = options.ca ?? (process.env.PPN_CA || undefined);
    writeEnrollment(stateDir, {
      server: options.server,
      token,
      node_id: options.nodeId,
      ...(caFile === undefined ? {} : { ca_file: resolve(caFile) }),
      ...(insecure ? { insecure } : {}),
    });
    process.stdout.write(`${JSON.stringify(node, null, 2)}\n`);
    process.stderr.write(`enrolled as ${options.nodeId}; start the agent with "service-vm-host run"\n`);
  });
}

export interface RunOptions {
  heartbeatIntervalS?: number | undefined;
  stopTimeoutS: number;
  accel: 'auto' | 'kvm' | 'tcg';
  logLevel: string;
}

export function runNode(stateDir: string, options: RunOptions): Promise<void> {
  return asCliErrors(async () => {
    const privateKey = readPrivateKey(requireNodeKey(stateDir));
    const enrollment = readEnrollment(stateDir);
    const log = pino({ level: options.logLevel }, pino.destination({ dest: 1, sync: true }));
    const driver = new QemuDriver({ stateDir, stopTimeoutMs: options.stopTimeoutS * 1000, ...(options.accel === 'auto' ? {} : { kvm: options.accel === 'kvm' }) });
    const ca = enrollment.ca_file === undefined ? undefined : readCaFile(enrollment.ca_file, 'the CA file enrollment.json names');
    const client = new FleetClient({
      server: enrollment.server,
      token: enrollment.token,
      privateKey,
      clock: systemClock,
      tls: { ca },
      insecure: enrollment.insecure === true,
    });
    const controller = new AbortController();
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        log.info({ signal }, 'stopping the agent; the VMs keep running');
        controller.abort();
      });
    }
    log.info(
      { node_id: enrollment.node_id, server: enrollment.server, state_dir: stateDir, accel: driver.accel, vms: driver.vmIds().length, version: VERSION },
      'agent started',
    );
    // Beside the heartbeats, not before them: a slow server must not hold up the node's VMs.
    void warnOfVersionSkew(
      'agent',
      () => client.serverVersion(),
      (warning) => log.warn({ server: enrollment.server }, warning),
    );
    await runHeartbeatLoop({
      stateDir,
      nodeId: enrollment.node_id,
      client,
      driver,
      reconciler: new Reconciler(driver, log),
      log,
      intervalS: options.heartbeatIntervalS,
      signal: controller.signal,
    });
    log.info({ node_id: enrollment.node_id }, 'agent stopped');
  });
}
