/**
 * JSON bodies are read as bytes and kept beside the parsed value, since a request signature's digest
 * covers the bytes as sent (SPEC §5). Parsing is Fastify's own (prototype-poisoning checks included).
 * Both listeners use it: the API's app and the agent listener's (src/api/http-app.ts).
 */
import type { FastifyInstance } from 'fastify';

declare module 'fastify' {
  interface FastifyRequest {
    /** A JSON body's bytes as received: a request signature's `content-digest` covers them. */
    rawBody: Buffer | null;
  }
}

export function keepRawJsonBodies(app: FastifyInstance): void {
  app.decorateRequest('rawBody', null);
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    // Fastify's parser answers through `done`; its return value carries nothing.
    void parseJson(request, body as unknown as string, done);
  });
}
