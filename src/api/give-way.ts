/**
 * Background requests give way to the others (docs/design/fleet.md, "Heartbeats give way to reads").
 *
 * A thousand nodes beating every 10 s are 100 requests a second, each most of a millisecond of the
 * event loop, and a tenant's read that arrives while one runs waits for all of it. A background
 * request (a route with `config.background`) therefore awaits `giveWay()` between its stages: when
 * it arrives (before auth), once its body is read (before its signature is checked) and once
 * admitted (before its handler). `giveWay()` resolves only once the event loop has polled for I/O
 * again, so whatever arrived meanwhile starts first, and a short request finishes, before the
 * background one goes on.
 *
 * One `setImmediate` is not enough. Request work runs in I/O callbacks (libuv's poll phase), and an
 * immediate queued there runs in the same loop iteration's check phase, before the next poll. An
 * immediate queued from inside an immediate runs in the next iteration's check phase, after that
 * iteration's poll.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { routeConfigOf } from './route-config.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Background traffic (a node's heartbeat): gives way to other requests between its stages. */
    background?: boolean;
  }
}

export function giveWay(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/**
 * The three points where a background request gives way. Registered before the auth plugin, whose
 * onRequest (authentication) and preValidation (the signature check) hooks then run after these.
 * Every request passes these hooks, so they take a callback rather than return a promise: for all
 * but background requests they only read one flag.
 */
export function registerGiveWay(app: FastifyInstance): void {
  const hook = (request: FastifyRequest, _reply: FastifyReply, done: () => void): void => {
    if (routeConfigOf(request).background) void giveWay().then(done);
    else done();
  };
  app.addHook('onRequest', hook);
  app.addHook('preValidation', hook);
  app.addHook('preHandler', hook);
}
