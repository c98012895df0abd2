/**
 * One log line per request, written when the answer has gone out (Fastify's own pair of lines,
 * "incoming request" and "request completed", is turned off in buildApp). The line carries the
 * method, the route template, the status, the duration, the client's address and, once the token
 * was verified, the tenant and token id; the request id comes with the request's logger. A refused
 * request (any problem answer: 401, 403, 429, 503, …) adds its error code, so refusals can be
 * counted from the log.
 *
 * What a line costs (docs/benchmarks.md, issue 11): building it is a few µs; what cost most was the
 * write, one write(2) to stdout per line from the event loop. The server's stream (serverLogStream)
 * therefore collects lines and hands them to the file system in batches, off the event loop.
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the verified token says the caller is, set by auth even when it then refuses. */
    principal: { tenantId: string | null; tokenId: string } | null;
  }
}

/** Lines are written once this many bytes have gathered (about 20 request lines)… */
export const LOG_BATCH_BYTES = 4096;
/** …or this long after the last write, whichever comes first, so a quiet server's lines are not held. */
export const LOG_FLUSH_MS = 200;

/**
 * The server's log stream: pino's own destination (sonic-boom) on `dest` (stdout unless given),
 * asynchronous and batched. Whatever is buffered is written synchronously when the process exits
 * (pino registers that for asynchronous destinations), so a stop loses nothing; a `kill -9` can lose
 * the last LOG_FLUSH_MS of lines, never the record of what happened (that is the ledger).
 */
export function serverLogStream(dest: number | string = 1): pino.DestinationStream {
  return pino.destination({ dest, sync: false, minLength: LOG_BATCH_BYTES, periodicFlush: LOG_FLUSH_MS });
}

/** The line's fields, one object of a fixed shape per request (optional fields are left undefined, which JSON omits). */
interface RequestLine {
  method: string;
  route: string;
  path: string | undefined;
  status: number;
  ms: number;
  tenant: string | null | undefined;
  token_id: string | undefined;
  code: string | undefined;
  /** The client: the peer's address, or X-Forwarded-For's when the peer is a trusted proxy (`serve --trust-proxy`). */
  remote: string;
}

export function registerRequestLog(app: FastifyInstance): void {
  app.decorateRequest('principal', null);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    const principal = request.principal;
    const code = request.problemCode;
    const line: RequestLine = {
      method: request.method,
      route: route ?? 'unmatched',
      path: route === undefined ? request.url.split('?')[0] : undefined,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      tenant: principal ? principal.tenantId : undefined,
      token_id: principal ? principal.tokenId : undefined,
      code: code ?? undefined,
      remote: request.ip,
    };
    if (code === 'internal') request.log.error(line, 'request failed');
    else if (code) request.log[reply.statusCode >= 500 ? 'warn' : 'info'](line, 'request refused');
    else request.log.info(line, 'request completed');
  });
}
