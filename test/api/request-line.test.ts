/**
 * The request line is built by hand (src/api/request-log.ts), not by pino's own call: it must be the
 * line pino would have written for the same fields and message, whatever the path, client address,
 * tenant and token hold, so a pino reader (or any JSON reader) parses it the same. pino itself is
 * the second implementation here: each request's line is compared with pino's for its fields.
 */
import { Writable } from 'node:stream';
import fc from 'fast-check';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerRequestLog } from '../../src/api/request-log.js';

/** A stream that keeps every line written to it. */
function lineStream(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { stream, lines };
}

/** What pino writes for `fields` and `message` on a request logger with this request id, parsed. */
async function pinoLine(requestId: string, level: 'info' | 'warn' | 'error', fields: Record<string, unknown>, message: string): Promise<Record<string, unknown>> {
  const { stream, lines } = lineStream();
  pino({ level: 'info' }, stream).child({ reqId: requestId })[level](fields, message);
  await new Promise((done) => setImmediate(done));
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

/** Both lines without the two fields that differ by when they were written. */
const timeless = (line: Record<string, unknown>) => ({ ...line, time: undefined, ms: undefined });

describe('the hand-built request line', () => {
  let app: FastifyInstance;
  const written = lineStream();

  beforeAll(async () => {
    app = Fastify({
      logger: { level: 'info', stream: written.stream },
      trustProxy: true,
      requestIdHeader: 'x-request-id',
      logController: new LogController({ disableRequestLogging: true }),
    });
    app.decorateRequest('problemCode', null);
    registerRequestLog(app);
    // The caller and the refusal are what auth and the error handler would set; here the test says them.
    app.addHook('onRequest', async (request) => {
      const tenant = request.headers['x-test-tenant'];
      if (typeof tenant === 'string') request.principal = { tenantId: tenant === 'null' ? null : decodeURIComponent(tenant), tokenId: 'tok-test' };
      const code = request.headers['x-test-code'];
      if (typeof code === 'string') request.problemCode = code as never;
    });
    app.get('/v1/things/:thing_id', async (request, reply) => reply.code(request.problemCode === 'internal' ? 500 : request.problemCode ? 403 : 200).send({}));
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
  });

  /** The line written for the request with this id. */
  async function lineOf(requestId: string): Promise<Record<string, unknown>> {
    await expect.poll(() => written.lines.some((line) => line.includes(`"reqId":"${requestId}"`))).toBe(true);
    return JSON.parse(written.lines.find((line) => line.includes(`"reqId":"${requestId}"`))!) as Record<string, unknown>;
  }

  let counter = 0;
  /** Header values as a client can send them: any printable text, with what JSON must escape. */
  const headerText = fc.string({ unit: fc.constantFrom('a', 'Z', '0', '"', '\\', ' ', '/', ':', '.', '%', '{', 'é', '\u00ff'), minLength: 1, maxLength: 20 });

  it('equals pino’s line for any path, client address, tenant and refusal', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          matched: fc.boolean(),
          path: fc.string({ unit: fc.constantFrom('a', '"', '\\', '%22', '%5C', '%E2%80%A8', '-', '_', 'é'), maxLength: 12 }),
          forwarded: fc.option(headerText, { nil: undefined }),
          tenant: fc.option(fc.oneof(fc.constant('null'), fc.string({ maxLength: 12 })), { nil: undefined }),
          code: fc.option(fc.constantFrom('forbidden', 'internal'), { nil: undefined }),
        }),
        async ({ matched, path, forwarded, tenant, code }) => {
          const requestId = `line-${++counter}`;
          const url = matched ? `/v1/things/${encodeURI(path) || 'x'}?q="1"` : `/elsewhere/${encodeURI(path)}?q=2`;
          const headers: Record<string, string> = { 'x-request-id': requestId };
          if (forwarded !== undefined) headers['x-forwarded-for'] = forwarded.replace(/[^\x20-\xff]/g, '');
          if (tenant !== undefined) headers['x-test-tenant'] = tenant === 'null' ? 'null' : encodeURIComponent(tenant);
          if (code !== undefined && matched) headers['x-test-code'] = code;
          const res = await app.inject({ method: 'GET', url, headers });
          const line = await lineOf(requestId);

          const route = matched ? '/v1/things/:thing_id' : undefined;
          const refusal = matched ? code : undefined;
          const principal = tenant === undefined ? undefined : { tenant: tenant === 'null' ? null : tenant, token_id: 'tok-test' };
          const fields = {
            method: 'GET',
            route: route ?? 'unmatched',
            path: route === undefined ? url.split('?')[0] : undefined,
            status: res.statusCode,
            ms: 0,
            ...principal,
            code: refusal,
            remote: line.remote,
          };
          const level = refusal === 'internal' ? 'error' : 'info';
          const message = refusal === 'internal' ? 'request failed' : refusal ? 'request refused' : 'request completed';
          expect(timeless(line)).toEqual(timeless(await pinoLine(requestId, level, fields, message)));
          // The address is the one sent: the last of X-Forwarded-For (a trusted proxy here), or the peer's.
          const sent = headers['x-forwarded-for']?.split(',').at(-1)?.trim();
          expect(line.remote).toBe(sent || '127.0.0.1');
          expect(typeof line.time).toBe('number');
          expect(typeof line.ms).toBe('number');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('is not written below the logger’s level', async () => {
    app.log.level = 'warn';
    try {
      await app.inject({ method: 'GET', url: '/v1/things/quiet', headers: { 'x-request-id': 'below-level' } });
      await app.inject({ method: 'GET', url: '/v1/things/loud', headers: { 'x-request-id': 'at-level', 'x-test-code': 'internal' } });
      expect(await lineOf('at-level')).toMatchObject({ level: 50, msg: 'request failed', code: 'internal' });
      expect(written.lines.some((line) => line.includes('"reqId":"below-level"'))).toBe(false);
    } finally {
      app.log.level = 'info';
    }
  });
});
