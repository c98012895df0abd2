/**
 * The fleet benchmark's HTTP: one JSON request over a keep-alive agent, optionally signed (RFC 9421)
 * by a holder key exactly as the node agent signs (src/agent/fleet-client.ts: `signRequest` over the
 * method, path, query and body digest, fresh nonce and `created` every time). node:http rather than
 * fetch, so the load generator spends less of the shared cores on its own HTTP stack.
 */
import type { KeyObject } from 'node:crypto';
import { Agent, request } from 'node:http';
import { systemClock } from '../src/clock.js';
import { signRequest } from '../src/httpsig/sign.js';

export interface JsonAnswer {
  status: number;
  body: unknown;
}

export interface JsonRequest {
  method: string;
  path: string;
  token: string;
  payload?: unknown;
  /** The holder key that signs the request (a node key under a node:agent token), with its keyid derived once. */
  signer?: { privateKey: KeyObject; keyid: string };
}

export function keepAliveAgent(sockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets: sockets });
}

export function sendJson(base: URL, agent: Agent, req: JsonRequest): Promise<JsonAnswer> {
  const body = req.payload === undefined ? undefined : Buffer.from(JSON.stringify(req.payload));
  const [path, query = ''] = req.path.split('?', 2) as [string, string?];
  const headers: Record<string, string> = {
    authorization: `Bearer ${req.token}`,
    ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}),
    ...(req.signer ? signRequest({ method: req.method, path, query, ...(body ? { body } : {}) }, { ...req.signer, clock: systemClock }) : {}),
  };
  return new Promise((done, fail) => {
    const outgoing = request({ host: base.hostname, port: base.port, method: req.method, path: req.path, headers, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown = text;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          // not JSON: keep the text
        }
        done({ status: response.statusCode ?? 0, body: parsed });
      });
      response.on('error', fail);
    });
    outgoing.on('error', fail);
    outgoing.end(body);
  });
}

/** sendJson that insists on one status and answers the body. */
export async function expectJson<T>(base: URL, agent: Agent, req: JsonRequest, status: number): Promise<T> {
  const answer = await sendJson(base, agent, req);
  if (answer.status !== status) throw new Error(`${req.method} ${req.path}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 400)}`);
  return answer.body as T;
}
