/**
 * One log line per request, written when the answer has gone out (Fastify's own pair of lines,
 * "incoming request" and "request completed", is turned off in buildApp). The line carries the
 * method, the route template, the status, the duration and, once the token was verified, the tenant
 * and token id; the request id comes with the request's logger. A refused request (any problem
 * answer: 401, 403, 429, 503, …) adds its error code, so refusals can be counted from the log.
 */
import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the verified token says the caller is, set by auth even when it then refuses. */
    principal: { tenantId: string | null; tokenId: string } | null;
  }
}

export function registerRequestLog(app: FastifyInstance): void {
  app.decorateRequest('principal', null);
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url;
    const fields = {
      method: request.method,
      route: route ?? 'unmatched',
      ...(route === undefined ? { path: request.url.split('?')[0] } : {}),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ...(request.principal ? { tenant: request.principal.tenantId, token_id: request.principal.tokenId } : {}),
      ...(request.problemCode ? { code: request.problemCode } : {}),
    };
    if (request.problemCode === 'internal') request.log.error(fields, 'request failed');
    else if (request.problemCode) request.log[reply.statusCode >= 500 ? 'warn' : 'info'](fields, 'request refused');
    else request.log.info(fields, 'request completed');
  });
}
