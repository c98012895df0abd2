/**
 * A cap on open connections per client address, so that one client cannot hold all of the server's
 * sockets (a slow-request flood from one address leaves room for everyone else). A connection over
 * the cap is answered 429 problem+json and closed before Node's HTTP parser ever sees it. Over TLS
 * the count and the answer come once the handshake is done, so the client can read the answer.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { PpnError } from '../errors.js';
import { rawProblemResponse } from './problem.js';

/** How long a refused connection may linger to read its answer before it is dropped. */
const REFUSED_LINGER_MS = 5000;

export function limitConnectionsPerAddress(server: Server, cap: number, onRefused: (address: string, requestId: string) => void): void {
  const open = new Map<string, number>();
  // The HTTP server's own 'connection' listener attaches the parser; wrapping it lets a refused
  // socket skip HTTP entirely rather than be parsed and served after the refusal was written.
  // An https server attaches the parser once the TLS handshake is done ('secureConnection').
  const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
  const parsers = server.listeners(event) as ((socket: Socket) => void)[];
  for (const parser of parsers) server.removeListener(event, parser);
  server.on(event, (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const count = open.get(address) ?? 0;
    if (count >= cap) {
      refuse(socket, cap, onRefused, address);
      return;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
    for (const parser of parsers) parser.call(server, socket);
  });
}

function refuse(socket: Socket, cap: number, onRefused: (address: string, requestId: string) => void, address: string): void {
  const requestId = randomUUID();
  const problem = new PpnError('too_many_connections', `this address already has ${cap} connections open; close one and retry`, {
    headers: { 'Retry-After': '1' },
  });
  socket.on('error', () => socket.destroy());
  // Read and drop whatever the client sends, so the close is an orderly one (no reset that could
  // swallow the answer), and drop the socket once the client has read it or after a short wait.
  socket.resume();
  socket.on('end', () => socket.destroy());
  socket.setTimeout(REFUSED_LINGER_MS, () => socket.destroy());
  socket.end(rawProblemResponse(problem, requestId));
  onRefused(address, requestId);
}
