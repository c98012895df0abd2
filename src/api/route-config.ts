/**
 * The matched route's config (`config.scope`, `config.background`, `config.url`, …), read once a
 * request. Fastify's `request.routeOptions` builds a new object of thirteen fields every time it is
 * read, and the hooks every request passes (give way, auth, metrics, the request log) read it seven
 * times or more: about 5 µs of a read's CPU (docs/benchmarks.md, issue 11). The config inside it is
 * the route's own object, the same on every read, so it is kept on the request.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';

type RouteConfig = FastifyRequest['routeOptions']['config'];

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by routeConfigOf on its first call for the request. */
    routeConfigSeen: RouteConfig | null;
  }
}

/** Before any hook that calls routeConfigOf, so every request has the property from its start. */
export function registerRouteConfig(app: FastifyInstance): void {
  app.decorateRequest('routeConfigSeen', null);
}

/** The route's config; `url` is its template, undefined when no route matched. */
export function routeConfigOf(request: FastifyRequest): RouteConfig {
  return (request.routeConfigSeen ??= request.routeOptions.config);
}
