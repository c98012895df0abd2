/**
 * The one place where errors become HTTP answers: RFC 9457 problem+json with `type`, `title`,
 * `status`, `detail`, `instance` and extension members. Domain errors (PpnError, TokenError),
 * Fastify's own errors (validation, body parsing, bad URLs) and errors on the raw socket before any
 * request exists (malformed HTTP, oversized headers, timeouts) all pass through here; anything else
 * is a 500 whose body says nothing about the internals (no stack, no SQL).
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorObject } from 'ajv';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PpnError, type ErrorCode } from '../errors.js';
import { translateStoreError } from '../store/store.js';
import { TokenError } from '../tokens/error.js';
import { describeValidation } from './validation.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The error code of the problem this request was answered with, if it was refused. */
    problemCode: ErrorCode | null;
  }
}

/** The IANA-registered problem type for quota refusals (SPEC §6). */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

interface ProblemKind {
  status: number;
  title: string;
  type: string;
}

const PROBLEM_KINDS: Record<ErrorCode, ProblemKind> = {
  invalid_input: { status: 400, title: 'Invalid input', type: 'urn:ppn:problem:invalid-input' },
  unauthenticated: { status: 401, title: 'Unauthenticated', type: 'urn:ppn:problem:unauthenticated' },
  forbidden: { status: 403, title: 'Forbidden', type: 'urn:ppn:problem:forbidden' },
  client_certificate_required: { status: 403, title: 'Client certificate required', type: 'urn:ppn:problem:client-certificate-required' },
  tenant_suspended: { status: 403, title: 'Tenant suspended', type: 'urn:ppn:problem:tenant-suspended' },
  not_found: { status: 404, title: 'Not found', type: 'urn:ppn:problem:not-found' },
  method_not_allowed: { status: 405, title: 'Method not allowed', type: 'urn:ppn:problem:method-not-allowed' },
  request_timeout: { status: 408, title: 'Request timeout', type: 'urn:ppn:problem:request-timeout' },
  conflict: { status: 409, title: 'Conflict', type: 'urn:ppn:problem:conflict' },
  ledger_not_integrated: { status: 409, title: 'Not yet in the tree', type: 'urn:ppn:problem:ledger-not-integrated' },
  quota_exceeded: { status: 429, title: 'Quota exceeded', type: QUOTA_EXCEEDED_TYPE },
  rate_limited: { status: 429, title: 'Rate limit exceeded', type: 'urn:ppn:problem:rate-limited' },
  too_many_connections: { status: 429, title: 'Too many connections', type: 'urn:ppn:problem:too-many-connections' },
  body_too_large: { status: 413, title: 'Body too large', type: 'urn:ppn:problem:body-too-large' },
  uri_too_long: { status: 414, title: 'URI too long', type: 'urn:ppn:problem:uri-too-long' },
  headers_too_large: { status: 431, title: 'Request headers too large', type: 'urn:ppn:problem:headers-too-large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type', type: 'urn:ppn:problem:unsupported-media-type' },
  store_unavailable: { status: 503, title: 'Store unavailable', type: 'urn:ppn:problem:store-unavailable' },
  ledger_unverified: { status: 503, title: 'Ledger failed verification', type: 'urn:ppn:problem:ledger-unverified' },
  ledger_verifying: { status: 503, title: 'Ledger being verified', type: 'urn:ppn:problem:ledger-verifying' },
  internal: { status: 500, title: 'Internal error', type: 'urn:ppn:problem:internal' },
};

export function problemKind(code: ErrorCode): ProblemKind {
  return PROBLEM_KINDS[code];
}

/** Turns whatever was thrown into a PpnError. */
export function toPpnError(thrown: unknown): PpnError {
  // A driver error meaning "the database cannot answer now" is a 503 wherever it surfaced.
  const error = translateStoreError(thrown);
  if (error instanceof PpnError) return error;
  if (error instanceof TokenError) return new PpnError('unauthenticated', `invalid token: ${error.message}`, { extensions: { token_error: error.code } });
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) return validationError(fastifyError);
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PpnError('body_too_large', 'request body exceeds 65536 bytes');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PpnError('unsupported_media_type', 'request body must be application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new PpnError('invalid_input', 'request body is not valid JSON', { extensions: { field: 'body' } });
    case 'FST_ERR_BAD_URL':
      return new PpnError('invalid_input', 'the path is not valid percent-encoding', { extensions: { field: 'path' } });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new PpnError('uri_too_long', `a path segment is longer than ${MAX_PARAM_LENGTH} characters`);
  }
  if (error instanceof SyntaxError) {
    return new PpnError('invalid_input', 'request body is not valid JSON', { extensions: { field: 'body' } });
  }
  return new PpnError('internal', 'internal error; the request id identifies it in the server log');
}

function validationError(error: FastifyError): PpnError {
  const part = error.validationContext ?? 'body';
  const { field, detail } = describeValidation(error.validation as unknown as ErrorObject[], part);
  return new PpnError('invalid_input', detail, { extensions: { field, in: part } });
}

/** The longest path parameter the router accepts; longer ones are a 414 (Fastify's maxParamLength). */
export const MAX_PARAM_LENGTH = 100;

function problemDocument(error: PpnError, instance: string, requestId: string): string {
  const kind = PROBLEM_KINDS[error.code];
  return JSON.stringify({
    type: kind.type,
    title: kind.title,
    status: kind.status,
    detail: error.message,
    instance,
    code: error.code,
    request_id: requestId,
    ...error.extensions,
  });
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: PpnError): FastifyReply {
  const kind = PROBLEM_KINDS[error.code];
  request.problemCode = error.code;
  // RFC 6750 §3: a 401 says which scheme it wants, and whether the token sent was the trouble.
  if (error.code === 'unauthenticated') {
    reply.header('WWW-Authenticate', request.headers.authorization ? 'Bearer realm="ppn", error="invalid_token"' : 'Bearer realm="ppn"');
  }
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply
    .code(kind.status)
    .type('application/problem+json')
    .send(problemDocument(error, request.url, request.id));
}

/**
 * A whole HTTP/1.1 answer for a socket that has no request object to answer through (src/api/app.ts's
 * clientErrorHandler and connection cap). It always closes the connection: what the client sent
 * next cannot be trusted to start a request.
 */
export function rawProblemResponse(error: PpnError, requestId: string = randomUUID()): string {
  const kind = PROBLEM_KINDS[error.code];
  const body = problemDocument(error, '', requestId);
  const headers = {
    'Content-Type': 'application/problem+json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    'X-Request-Id': requestId,
    ...error.headers,
  };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${kind.status} ${STATUS_CODES[kind.status]}\r\n${lines.join('')}\r\n${body}`;
}

/** What an error on the raw socket (Node's 'clientError') means for the client. */
export function socketProblem(error: Error & { code?: string }, requestTimeoutMs: number): PpnError {
  switch (error.code ?? '') {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new PpnError('request_timeout', `the request was not received in full within ${requestTimeoutMs / 1000} s`);
    case 'HPE_HEADER_OVERFLOW':
      return new PpnError('headers_too_large', 'the request headers are larger than the server accepts (16 KiB in all)');
    default:
      return new PpnError('invalid_input', `the request is not well-formed HTTP/1.1 (${error.code ?? 'unreadable'})`);
  }
}

/**
 * Fastify's `clientErrorHandler`: answers a broken or too slow request on the raw socket with a
 * problem document, then closes it.
 */
export function answerSocketError(log: FastifyBaseLogger, requestTimeoutMs: number, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const problem = socketProblem(error, requestTimeoutMs);
  const requestId = randomUUID();
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) socket.end(rawProblemResponse(problem, requestId));
  log.info({ reqId: requestId, status: PROBLEM_KINDS[problem.code].status, code: problem.code, remote: socket.remoteAddress, reason: error.code }, 'connection refused');
  socket.destroySoon();
}

/**
 * Fastify's `frameworkErrors`: errors found while routing, before any hook runs (a path that is not
 * valid percent-encoding, a path parameter over the length limit).
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const problem = toPpnError(error);
  reply.header('X-Request-Id', request.id);
  void sendProblem(request, reply, problem);
  request.log.info({ method: request.method, url: request.url, status: PROBLEM_KINDS[problem.code].status, code: problem.code }, 'request refused');
}

/** One route pattern (`/v1/vms/:vm_id`) as a test of a concrete path, and the methods it serves. */
interface KnownPath {
  matches: RegExp;
  methods: Set<string>;
}

/** `/v1/vms/:vm_id` → a test for `/v1/vms/<anything but a slash>`, with or without a trailing slash. */
function pathPattern(url: string): RegExp {
  const segments = url.split('/').map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${segments.join('/')}/?$`);
}

export function registerProblemHandling(app: FastifyInstance): void {
  app.decorateRequest('problemCode', null);
  app.setErrorHandler((error, request, reply) => {
    const problem = toPpnError(error);
    if (problem.code === 'internal') request.log.error({ err: error }, 'unhandled error');
    return sendProblem(request, reply, problem);
  });

  // A path the API serves with other methods is a 405 naming them (RFC 9110 §15.5.6), not a 404.
  const known = new Map<string, KnownPath>();
  app.addHook('onRoute', (route) => {
    let entry = known.get(route.url);
    if (!entry) {
      entry = { matches: pathPattern(route.url), methods: new Set() };
      known.set(route.url, entry);
    }
    for (const method of [route.method].flat()) entry.methods.add(method);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const allowed = new Set([...known.values()].filter((k) => k.matches.test(path)).flatMap((k) => [...k.methods]));
    if (allowed.size > 0) {
      const allow = [...allowed].sort().join(', ');
      return sendProblem(
        request,
        reply,
        new PpnError('method_not_allowed', `${request.method} is not allowed on ${path}; it takes ${allow}`, { headers: { Allow: allow } }),
      );
    }
    return sendProblem(request, reply, new PpnError('not_found', `no route ${request.method} ${path}`));
  });
}
