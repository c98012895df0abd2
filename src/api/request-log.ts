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
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { pino } from 'pino';
import { routeConfigOf } from './route-config.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the verified token says the caller is, set by auth even when it then refuses. */
    principal: { tenantId: string | null; tokenId: string } | null;
  }
}

/** Lines are written once this many bytes have gathered (about 130 request lines)… */
export const LOG_BATCH_BYTES = 32 * 1024;
/** …or this long after the last write, whichever comes first, so a quiet server's lines are not held. */
export const LOG_FLUSH_MS = 200;

/**
 * The server's log stream: pino's own destination (sonic-boom) on `dest` (stdout unless given),
 * asynchronous and batched. Whatever is buffered is written synchronously when the process exits
 * (pino registers that for asynchronous destinations), so a stop loses nothing; a `kill -9` can lose
 * the last LOG_FLUSH_MS of lines, never the record of what happened (that is the ledger).
 *
 * Each line goes in as bytes. Given text, sonic-boom measures the byte length of its whole pending
 * batch again at every line, a cost that grows with the batch: 2.9 µs a line at 4 KiB, 7.5 µs at
 * 32 KiB, against 1.3 µs as bytes at 32 KiB (docs/benchmarks.md, issue 11).
 */
export function serverLogStream(dest: number | string = 1): pino.DestinationStream {
  const destination = pino.destination({
    dest,
    sync: false,
    contentMode: 'buffer',
    minLength: LOG_BATCH_BYTES,
    maxWrite: 2 * LOG_BATCH_BYTES,
    periodicFlush: LOG_FLUSH_MS,
  });
  // In buffer mode sonic-boom takes bytes, though its types say text.
  const writeBytes = destination.write.bind(destination) as unknown as (bytes: Buffer) => boolean;
  return { write: (line: string) => writeBytes(Buffer.from(line)) };
}

/** pino's numeric levels of the three kinds of request line. */
const INFO = 30;
const WARN = 40;
const ERROR = 50;

/** A pino logger's parts that a line is made of, under the symbols pino exports for this use. */
type PinoLogger = Record<symbol, unknown> & { levelVal?: number };
const { chindingsSym, streamSym, timeSym, lsCacheSym, endSym } = pino.symbols;

/** Strings that are their own JSON text between quotes: ids, routes, methods, addresses. */
const PLAIN = /^[\w.:/@-]*$/;

/** A string as a JSON value; JSON's null for null. Most of a line's strings are plain, and quoting them is cheaper than JSON.stringify. */
const text = (value: string | null): string => (value === null ? 'null' : PLAIN.test(value) ? `"${value}"` : JSON.stringify(value));

/**
 * The request's line, written as pino would write `request.log[level](fields, message)` and to the
 * same stream, so it sits in order among the server's other lines and any pino reader parses it:
 * `{"level":N`, pino's time, the request logger's bindings as pino serialised them when it made the
 * logger (pid, hostname, reqId), the fields, the message, `}` and the line end. It is built as one
 * string: pino's own call takes an object, walks it key by key and serialises each value, which
 * cost several µs a request (docs/benchmarks.md, issue 11).
 */
function writeLine(logger: PinoLogger, level: number, request: FastifyRequest, reply: FastifyReply, message: string): void {
  const route = routeConfigOf(request).url;
  const principal = request.principal;
  const code = request.problemCode;
  let line = `${(logger[lsCacheSym] as Record<number, string>)[level]}${(logger[timeSym] as () => string)()}${logger[chindingsSym] as string}`;
  line += `,"method":${text(request.method)}`;
  line += route === undefined ? `,"route":"unmatched","path":${text(request.url.split('?')[0]!)}` : `,"route":${text(route)}`;
  line += `,"status":${reply.statusCode},"ms":${Math.round(reply.elapsedTime * 10) / 10}`;
  if (principal) line += `,"tenant":${text(principal.tenantId)},"token_id":${text(principal.tokenId)}`;
  if (code) line += `,"code":${text(code)}`;
  // The client: the peer's address, or X-Forwarded-For's when the peer is a trusted proxy (`serve --trust-proxy`).
  const remote = request.ip;
  if (remote !== undefined) line += `,"remote":${text(remote)}`;
  line += `,"msg":${text(message)}${logger[endSym] as string}`;
  (logger[streamSym] as { write(line: string): unknown }).write(line);
}

export function registerRequestLog(app: FastifyInstance): void {
  app.decorateRequest('principal', null);
  app.addHook('onResponse', (request, reply, done) => {
    const code = request.problemCode;
    const level = code === 'internal' ? ERROR : code && reply.statusCode >= 500 ? WARN : INFO;
    const logger = request.log as unknown as PinoLogger;
    // No levelVal: logging is off (the server was built with `logger: false`).
    try {
      if (logger.levelVal !== undefined && level >= logger.levelVal) {
        writeLine(logger, level, request, reply, code === 'internal' ? 'request failed' : code ? 'request refused' : 'request completed');
      }
    } finally {
      done();
    }
  });
}
