/**
 * What every listener of this server is built on (the API's app, src/api/app.ts, and the agent
 * listener's, src/api/agent-listener/worker.ts), so that both answer alike, errors byte for byte:
 * Fastify's options (body limit, request ids, request timeouts, TLS), the connection cap per address,
 * JSON-only bodies kept raw for request signatures, strict validators and queries, problem+json for
 * every error, one log line per request, and X-Request-Id on every answer. It never listens.
 */
import { randomUUID } from 'node:crypto';
import type { ServerOptions as HttpsOptions } from 'node:https';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import Fastify, { LogController } from 'fastify';
import { limitConnectionsPerAddress } from './connections.js';
import type { TypedApp } from './deps.js';
import { answerFrameworkError, answerSocketError, MAX_PARAM_LENGTH, registerProblemHandling } from './problem.js';
import { keepRawJsonBodies } from './raw-body.js';
import { registerRequestLog } from './request-log.js';
import { registerRouteConfig } from './route-config.js';
import { NoQuery } from './schemas.js';

export const BODY_LIMIT_BYTES = 64 * 1024;
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 256;

export interface HttpAppOptions {
  /** pino options, or false for no logging (tests). */
  logger?: boolean | Record<string, unknown>;
  /** How long a client may take to send a whole request, headers and body (default 30 s); then 408. */
  requestTimeoutMs?: number;
  /** Open connections allowed from one client address (default 256); more are answered 429 and closed. */
  maxConnectionsPerAddress?: number;
  /** Serve HTTPS with these options (src/tls/server.ts builds them from `serve --tls-cert --tls-key`). */
  https?: HttpsOptions;
  /** Proxies (addresses, CIDR blocks) whose X-Forwarded-For gives request.ip; none by default, so the header is ignored. */
  trustProxy?: string[];
  /** Registered after the route config and before the request log, so its hooks run before the log's (the API's metrics). */
  instrument?: (app: TypedApp) => void;
}

// Bodies are validated strictly: no type coercion and no silent removal of unknown fields, so a
// wrong type or a misspelt field is a 400 naming it. Query strings and path parameters are text,
// so they are coerced ("10" → 10) by a second validator.
// `verbose` keeps the failing schema and data on each error, from which src/api/validation.ts words it.
const bodyAjv = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false, strict: false, verbose: true });
const textAjv = new Ajv({ coerceTypes: true, removeAdditional: false, useDefaults: true, allErrors: false, strict: false, verbose: true });

export function createHttpApp(options: HttpAppOptions): TypedApp {
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const app: TypedApp = Fastify({
    logger: options.logger ?? false,
    // src/api/request-log.ts writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    // A request whose headers or body never arrive in full is answered 408 and closed, so slow or
    // stalled clients cannot hold sockets open. Node checks its timers every connectionsCheckingInterval.
    requestTimeout: requestTimeoutMs,
    ...serverOptions(requestTimeoutMs, options.https),
    trustProxy: options.trustProxy && options.trustProxy.length > 0 ? options.trustProxy : false,
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: (error, socket) => answerSocketError(app.log, requestTimeoutMs, error, socket),
  }).withTypeProvider<TypeBoxTypeProvider>();
  limitConnectionsPerAddress(app.server, options.maxConnectionsPerAddress ?? DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, (address, requestId) =>
    app.log.warn({ reqId: requestId, remote: address, status: 429, code: 'too_many_connections' }, 'connection refused'),
  );

  // Fastify parses text/plain by default; the API takes JSON only, so any other body is a 415 (SPEC §3).
  app.removeContentTypeParser('text/plain');
  keepRawJsonBodies(app);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));

  registerRouteConfig(app);
  options.instrument?.(app);
  registerRequestLog(app);
  // Hooks every request passes take a callback: an async hook costs a promise and a microtask each.
  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('X-Request-Id', request.id);
    done(null, payload);
  });
  registerProblemHandling(app);
  requireStrictQueries(app);
  return app;
}

/**
 * Node's server options: the request timeouts, and the TLS options when serving HTTPS (Fastify
 * then builds an https server from `https` alone, so the timeouts go there too).
 */
function serverOptions(requestTimeoutMs: number, tls: HttpsOptions | undefined): { http: object } | { https: HttpsOptions } {
  const timeouts = {
    requestTimeout: requestTimeoutMs,
    headersTimeout: requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(10, requestTimeoutMs / 4)),
  };
  return tls ? { https: { ...timeouts, ...tls } } : { http: timeouts };
}

/**
 * Every route refuses query parameters it does not name (a 400 naming them), rather than ignore a
 * misspelt filter and answer as if it were absent. A route without a query schema takes none.
 */
function requireStrictQueries(app: TypedApp): void {
  app.addHook('onRoute', (route) => {
    const querystring = (route.schema?.querystring ?? NoQuery) as { additionalProperties?: unknown };
    if (querystring.additionalProperties !== false)
      throw new TypeError(`${[route.method].flat().join(',')} ${route.url}: its query schema must refuse unknown parameters (use strictQuery)`);
    route.schema = { ...route.schema, querystring };
  });
}
