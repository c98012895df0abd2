/**
 * Answers made outside the routes: by Fastify's router (bad URLs, over-long path parameters, wrong
 * methods), and on the raw socket before or without a request (malformed HTTP, oversized headers,
 * requests that never finish, too many connections from one address). Every one is an RFC 9457
 * problem with an X-Request-Id, like every other error (SPEC §3). The socket cases run against a
 * listening server over real TCP, since inject() has no socket to time out or overflow.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';
import { expectProblem } from './expectations.js';

const REQUEST_TIMEOUT_MS = 300;
const CONNECTION_CAP = 3;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Parses one HTTP/1.1 answer from what the server sent before it closed the connection. */
function parseAnswer(text: string): RawAnswer {
  const split = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(split + 4) };
}

function openSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the server sends on `socket` until it closes the connection. */
function readUntilClosed(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(text));
  });
}

function expectRawProblem(answer: RawAnswer, status: number, code: string): Record<string, unknown> {
  expect(answer.status, answer.body).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(answer.headers.connection).toBe('close');
  expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(Number(answer.headers['content-length'])).toBe(Buffer.byteLength(answer.body));
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  expect(body).toMatchObject({ status, code, request_id: answer.headers['x-request-id'] });
  expect(typeof body.type).toBe('string');
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  return body;
}

describe('router errors are problem+json', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('a path parameter over 100 characters answers 414 with a request id', async () => {
    const res = await h.request('GET', `/v1/vms/${'a'.repeat(101)}`, { token: h.adminToken, headers: { 'x-request-id': 'long-path-1' } });
    expect(expectProblem(res, 414).code).toBe('uri_too_long');
    expect(res.headers['x-request-id']).toBe('long-path-1');
    expect(res.json()).toMatchObject({ request_id: 'long-path-1' });
  });

  it('a path that is not valid percent-encoding answers 400 naming the path', async () => {
    const res = await h.request('GET', '/v1/vms/%', { token: h.adminToken });
    const problem = expectProblem(res, 400);
    expect(problem).toMatchObject({ code: 'invalid_input', field: 'path' });
    expect(res.headers['x-request-id']).toBe(problem.request_id);
  });

  it.each([
    ['PUT', '/v1/vms', 'GET, HEAD, POST'],
    ['PATCH', '/v1/vms/vm-00000000000000000000000000', 'DELETE, GET, HEAD'],
    ['GET', '/v1/vms/vm-00000000000000000000000000/start', 'POST'],
    ['DELETE', '/v1/tenants', 'GET, HEAD, POST'],
    ['POST', '/v1/whoami', 'GET, HEAD'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['PUT', '/v1/vms/', 'GET, HEAD, POST'],
  ])('%s %s answers 405 with Allow: %s, before any token is looked at', async (method, url, allow) => {
    const res = await h.request(method, url, { body: {} });
    expect(expectProblem(res, 405).code).toBe('method_not_allowed');
    expect(res.headers.allow).toBe(allow);
    expect(res.headers['x-request-id']).toBeDefined();
  });

  it('a path the API does not serve with any method is still 404', async () => {
    for (const url of ['/v1/nothing', '/v1/vms/vm-00000000000000000000000000/reboot', '/v2/vms']) {
      expect(expectProblem(await h.request('PUT', url, {}), 404).code).toBe('not_found');
    }
  });

  it('401 answers carry WWW-Authenticate: Bearer, saying whether the token was the trouble', async () => {
    const missing = await h.request('GET', '/v1/vms');
    expectProblem(missing, 401);
    expect(missing.headers['www-authenticate']).toBe('Bearer realm="ppn"');
    const bad = await h.request('GET', '/v1/vms', { token: 'garbage' });
    expectProblem(bad, 401);
    expect(bad.headers['www-authenticate']).toBe('Bearer realm="ppn", error="invalid_token"');
  });
});

describe('socket errors are problem+json, and the connection is closed', () => {
  let h: Harness;
  let port: number;

  beforeAll(async () => {
    h = await startHarness({ app: { requestTimeoutMs: REQUEST_TIMEOUT_MS, maxConnectionsPerAddress: CONNECTION_CAP } });
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    port = (h.app.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await h.close();
  });

  async function exchange(request: string | Buffer): Promise<RawAnswer> {
    const socket = await openSocket(port);
    const closed = readUntilClosed(socket);
    socket.write(request);
    return parseAnswer(await closed);
  }

  it('an authenticated POST whose body never comes is answered 408 and closed', async () => {
    const answer = await exchange(
      `POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.adminToken}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
    );
    expectRawProblem(answer, 408, 'request_timeout');
  });

  it('a body that stops half way is answered 408 and closed', async () => {
    const answer = await exchange(
      `POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.adminToken}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"tenant_id":`,
    );
    expectRawProblem(answer, 408, 'request_timeout');
  });

  it('headers that never end are answered 408 and closed', async () => {
    const answer = await exchange('GET /v1/vms HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expectRawProblem(answer, 408, 'request_timeout');
  });

  it('headers over 16 KiB are answered 431', async () => {
    const answer = await exchange(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
    expectRawProblem(answer, 431, 'headers_too_large');
  });

  it.each([
    ['a request line that is not HTTP', 'HELLO THERE\r\n\r\n'],
    ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'],
    ['a bad Content-Length', 'POST /v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n'],
    ['two Content-Lengths that disagree', 'POST /v1/tenants HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
  ])('%s is answered 400', async (_name, request) => {
    expectRawProblem(await exchange(request), 400, 'invalid_input');
  });

  it(`an address with ${CONNECTION_CAP} connections open has the next refused with 429, and served again once one closes`, async () => {
    const held = await Promise.all(Array.from({ length: CONNECTION_CAP }, () => openSocket(port)));
    try {
      // The server counts a connection when it accepts it: wait until it has all of them.
      await expect.poll(() => new Promise<number>((resolve) => h.app.server.getConnections((_e, n) => resolve(n)))).toBe(CONNECTION_CAP);
      const refused = await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(refused.headers['retry-after']).toBe('1');
      expectRawProblem(refused, 429, 'too_many_connections');

      const freed = held.pop()!;
      const gone = new Promise((resolve) => freed.once('close', resolve));
      freed.destroy();
      await gone;
      await expect.poll(async () => (await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).status).toBe(200);
    } finally {
      for (const socket of held) socket.destroy();
    }
  });

  it('a request sent in full and on time is served as usual', async () => {
    const answer = await exchange('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ status: 'ok' });
  });
});
