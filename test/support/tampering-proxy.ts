/**
 * An HTTP proxy in front of a server process that, once `tamper` is set, flips one hex digit of
 * the first hash in every inclusion proof it passes on: a stand-in for a server (or a network) that
 * serves a proof for another history. Everything else passes unchanged, signatures included, since
 * they cover the method, path and query, which the proxy keeps.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const PROOF_PATH = '/v1/ledger/proof/inclusion';

export class TamperingProxy {
  tamper = false;
  /** Proofs altered so far. */
  tampered = 0;
  url = '';
  private readonly server: Server;

  private constructor(upstream: string) {
    this.server = createServer((request, response) => {
      forward(upstream, request).then(
        async (answer) => {
          const body = this.alter(request, answer, Buffer.from(await answer.arrayBuffer()));
          const headers = Object.fromEntries(
            [...answer.headers].filter(([name]) => !['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(name)),
          );
          response.writeHead(answer.status, { ...headers, 'content-length': body.length });
          response.end(body);
        },
        (error: unknown) => response.writeHead(502).end(String(error)),
      );
    });
  }

  static async start(upstream: string): Promise<TamperingProxy> {
    const proxy = new TamperingProxy(upstream);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.url = `http://127.0.0.1:${(proxy.server.address() as AddressInfo).port}`;
    return proxy;
  }

  private alter(request: IncomingMessage, answer: Response, body: Buffer): Buffer {
    if (!this.tamper || !request.url?.startsWith(PROOF_PATH) || !answer.ok) return body;
    const proof = JSON.parse(body.toString()) as { hashes: string[] };
    const first = proof.hashes[0];
    if (first === undefined) return body;
    proof.hashes[0] = first.slice(0, -1) + (first.endsWith('0') ? '1' : '0');
    this.tampered++;
    return Buffer.from(JSON.stringify(proof));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function forward(upstream: string, request: IncomingMessage): Promise<Response> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const headers = Object.entries(request.headers).flatMap(([name, value]) =>
    value === undefined || name === 'host' || name === 'connection' ? [] : [[name, Array.isArray(value) ? value.join(', ') : value] as [string, string]],
  );
  return fetch(`${upstream}${request.url ?? '/'}`, {
    method: request.method,
    headers,
    body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    redirect: 'manual',
  });
}
