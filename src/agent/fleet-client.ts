/**
 * The agent's only way to the server (docs/design/fleet.md): enroll, heartbeat, console upload.
 * Every request carries the node's `node:agent` token and is signed with the node key (RFC 9421,
 * src/httpsig/sign.ts), as the server demands of node tokens.
 *
 * The heartbeat reply's VM list is authoritative (VMs missing from it are destroyed), so a reply
 * that is not exactly the agreed shape is refused whole, never acted on in part.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../clock.js';
import { keyIdOf, signRequest } from '../httpsig/sign.js';
import { plainHttpRefusal, send, type ClientTls } from '../tls/client.js';
import type { Capacity } from './capacity.js';
import { AgentError } from './error.js';
import type { VmObservation } from './qemu.js';
import type { DesiredVm } from './reconcile.js';

export interface FleetClientOptions {
  server: string;
  token: string;
  privateKey: KeyObject;
  clock: Clock;
  /** The CA the server's certificate is checked against (default: the system's). */
  tls?: ClientTls;
  /** Allow plain http:// to a server that is not on this machine. */
  insecure?: boolean;
}

export interface HeartbeatReply {
  node: unknown;
  heartbeat_interval_s: number;
  vms: DesiredVm[];
}

export class FleetClient {
  private readonly base: URL;
  private readonly keyid: string;

  constructor(private readonly options: FleetClientOptions) {
    this.base = parseServerUrl(options.server, options.insecure === true);
    this.keyid = keyIdOf(options.privateKey);
  }

  /** POST /v1/nodes: the node record the server made. */
  enroll(nodeId: string, capacity: Capacity): Promise<unknown> {
    return this.send('POST', '/v1/nodes', { node_id: nodeId, capacity });
  }

  async heartbeat(nodeId: string, capacity: Capacity, vms: VmObservation[]): Promise<HeartbeatReply> {
    const reply = await this.send('POST', `/v1/nodes/${encodeURIComponent(nodeId)}/heartbeat`, { capacity, vms });
    return parseHeartbeatReply(reply);
  }

  /** PUT the console's last bytes (at most 64 KiB) for the tenant to read. */
  async uploadConsole(nodeId: string, vmId: string, tail: Buffer): Promise<void> {
    await this.send('PUT', `/v1/nodes/${encodeURIComponent(nodeId)}/vms/${encodeURIComponent(vmId)}/console`, { data: tail.toString('base64') });
  }

  /** GET /v1/version (public): the server's release, for the version-skew check; null from a release before it. */
  async serverVersion(): Promise<unknown> {
    try {
      return await this.send('GET', '/v1/version');
    } catch (error) {
      if (error instanceof AgentError && error.status === 404) return null;
      throw error;
    }
  }

  private async send(method: string, path: string, payload?: unknown): Promise<unknown> {
    const url = new URL(`${this.base.pathname.replace(/\/+$/, '')}${path}`, this.base);
    const body = payload === undefined ? undefined : Buffer.from(JSON.stringify(payload));
    const headers: Record<string, string> = {
      ...(body ? { 'content-type': 'application/json' } : {}),
      authorization: `Bearer ${this.options.token}`,
      ...signRequest(
        { method, path: url.pathname, query: url.search.slice(1), body },
        { privateKey: this.options.privateKey, keyid: this.keyid, clock: this.options.clock },
      ),
    };
    let response: Response;
    try {
      response = await send(url, { method, headers, body, signal: AbortSignal.timeout(30_000) }, this.options.tls);
    } catch (error) {
      const cause = (error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message;
      throw new AgentError('server_unreachable', `cannot reach ${url.origin}: ${cause}`, { cause: error });
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const problem = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
      const why = [problem.detail, problem.title].find((text) => typeof text === 'string') ?? (text.trim().slice(0, 300) || response.statusText);
      throw new AgentError('server_refused', `${method} ${url.pathname}: ${response.status} ${String(why)}`, { status: response.status, problem });
    }
    return parsed;
  }
}

/** The server's URL, refused unless it is http(s), and plain http:// only to this machine or with `insecure`. */
export function parseServerUrl(server: string, insecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new AgentError('server_unreachable', `--server wants an http(s) URL such as http://127.0.0.1:9221; got "${server}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new AgentError('server_unreachable', `--server wants an http(s) URL; got "${server}"`);
  const refusal = plainHttpRefusal(url, insecure);
  if (refusal) throw new AgentError('server_unreachable', refusal);
  return url;
}

const DESIRED_STATES = new Set(['running', 'stopped', 'deleted']);

function positiveInt(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) > 0;
}

/** The reply, checked field by field (untrusted input: it decides which VMs this node destroys). */
export function parseHeartbeatReply(reply: unknown): HeartbeatReply {
  const bad = (why: string): AgentError => new AgentError('bad_reply', `the heartbeat reply is not as agreed: ${why}; nothing was changed`);
  if (typeof reply !== 'object' || reply === null) throw bad('not a JSON object');
  const { node, heartbeat_interval_s: interval, vms } = reply as Record<string, unknown>;
  if (!positiveInt(interval)) throw bad('heartbeat_interval_s is not a positive whole number');
  if (!Array.isArray(vms)) throw bad('vms is not a list');
  const desired = vms.map((vm: unknown, i): DesiredVm => {
    if (typeof vm !== 'object' || vm === null) throw bad(`vms[${i}] is not an object`);
    const v = vm as Record<string, unknown>;
    if (typeof v.vm_id !== 'string' || typeof v.name !== 'string') throw bad(`vms[${i}] lacks vm_id or name`);
    if (!positiveInt(v.vcpus) || !positiveInt(v.memory_mb) || !positiveInt(v.disk_gb)) throw bad(`vms[${i}] (${v.vm_id}) has no whole vcpus, memory_mb or disk_gb`);
    if (v.image !== undefined && v.image !== null && typeof v.image !== 'string') throw bad(`vms[${i}] (${v.vm_id}) has an image that is neither a string nor null`);
    if (typeof v.desired_state !== 'string' || !DESIRED_STATES.has(v.desired_state))
      throw bad(`vms[${i}] (${v.vm_id}) has desired_state ${JSON.stringify(v.desired_state)}`);
    return {
      vm_id: v.vm_id,
      name: v.name,
      vcpus: v.vcpus as number,
      memory_mb: v.memory_mb as number,
      disk_gb: v.disk_gb as number,
      image: v.image ?? null,
      desired_state: v.desired_state as DesiredVm['desired_state'],
    };
  });
  return { node, heartbeat_interval_s: interval as number, vms: desired };
}
