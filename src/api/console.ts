/**
 * The web console (console/, built by `npm run build` into dist/console) served at /console/.
 * Everything it loads comes from this server, so it works on a network without internet, and its
 * Content-Security-Policy says so: no inline script, no other origin, no framing. Vite names the
 * files under assets/ by their content hash, so they may be cached for ever; index.html names the
 * current ones and is revalidated on every load.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply } from 'fastify';
import type { TypedApp } from './deps.js';

export const CONSOLE_PREFIX = '/console/';

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

/**
 * The built console: dist/console under the package's root, found from this file whether it runs
 * as built (dist/src/api/) or from source (src/api/, under the test runner).
 */
export function builtConsoleDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('the package root (with package.json) was not found above src/api');
    dir = parent;
  }
  return join(dir, 'dist', 'console');
}

export async function registerConsole(app: TypedApp, root: string): Promise<void> {
  await app.register(fastifyStatic, {
    root,
    prefix: CONSOLE_PREFIX,
    index: ['index.html'],
    // For sendFile below.
    decorateReply: true,
    cacheControl: false,
    etag: true,
    lastModified: true,
    serveDotFiles: false,
    setHeaders: (reply: FastifyReply, path: string) => {
      reply.header('Cache-Control', path.includes(`${join('console', 'assets')}/`) ? IMMUTABLE : REVALIDATE);
      reply.header('Content-Security-Policy', CONSOLE_CSP);
      reply.header('X-Content-Type-Options', 'nosniff');
      reply.header('X-Frame-Options', 'DENY');
      reply.header('Referrer-Policy', 'no-referrer');
    },
  });
  // The router ignores a trailing slash, so /console/ comes here too, not to the wildcard above.
  app.get('/console', { schema: { hide: true } }, (_request, reply) => reply.sendFile('index.html'));
}
