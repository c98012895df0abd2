/**
 * The agent listener (`serve --agent-listen`, docs/design/fleet.md): the node's routes served from a
 * worker thread on a second port. Real HTTP to that port, real node keys and node:agent tokens, the
 * harness's store (a real SQLite file unless the run uses PostgreSQL); each answer is compared with
 * the API port's answer to the same request. Needs `npm run build`: the worker runs from dist/.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { agentCallsOf, httpMetricsOf } from '../../src/api/app.js';
import { startAgentListener, type AgentListener } from '../../src/api/agent-listener/host.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { contentDigest } from '../../src/httpsig/digest.js';
import { signRequest } from '../../src/httpsig/sign.js';
import type { KeyPair } from '../../src/tokens/keys.js';
import { startHarness, type Harness } from '../support/harness.js';

const TENANT = 'listener-fleet';
const CAPACITY = { cpus: 4, memory_mb_total: 8192, memory_mb_available: 6000, disk_gb_available: 100, kvm: true, load1: 0.1 };

interface Sent {
  token?: string;
  signWith?: KeyObject;
  body?: unknown;
  payload?: string;
  headers?: Record<string, string>;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

describe('the agent listener', () => {
  let h: Harness;
  let listener: AgentListener;
  let logged = '';
  let node: { token: string; keys: KeyPair };
  let requestIds = 0;

  /** The request's headers, signed as the node agent signs (by the harness clock) when signWith is given. */
  function prepare(method: string, url: string, sent: Sent): { headers: Record<string, string>; payload: string | undefined } {
    const headers: Record<string, string> = { 'x-request-id': `listener-test-${++requestIds}`, ...sent.headers };
    if (sent.token !== undefined) headers.authorization = `Bearer ${sent.token}`;
    const payload = sent.payload ?? (sent.body === undefined ? undefined : JSON.stringify(sent.body));
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    if (sent.signWith) {
      const body = payload === undefined ? undefined : Buffer.from(payload);
      Object.assign(headers, signRequest({ method, ...splitTarget(url), headers, body }, { privateKey: sent.signWith, clock: h.clock }));
    }
    return { headers, payload };
  }

  async function toAgentPort(method: string, url: string, headers: Record<string, string>, payload: string | undefined): Promise<Answer> {
    const res = await fetch(`http://127.0.0.1:${listener.port}${url}`, { method, headers, body: payload });
    return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
  }

  async function toApiPort(method: string, url: string, headers: Record<string, string>, payload: string | undefined): Promise<Answer> {
    const res = await h.app.inject({ method: method as 'POST', url, headers, ...(payload !== undefined ? { payload } : {}) });
    return { status: res.statusCode, headers: res.headers as Record<string, string>, body: res.body };
  }

  const agent = async (method: string, url: string, sent: Sent = {}) => {
    const { headers, payload } = prepare(method, url, sent);
    return toAgentPort(method, url, headers, payload);
  };

  /** The same request to both ports, with the same request id, each signed afresh (the first may spend its nonce). */
  async function bothPorts(method: string, url: string, sent: Sent): Promise<{ agent: Answer; api: Answer }> {
    const id = { 'x-request-id': `listener-test-${++requestIds}` };
    const first = prepare(method, url, { ...sent, headers: { ...id, ...sent.headers } });
    const second = prepare(method, url, { ...sent, headers: { ...id, ...sent.headers } });
    return { agent: await toAgentPort(method, url, first.headers, first.payload), api: await toApiPort(method, url, second.headers, second.payload) };
  }

  /** The parts of an answer a client sees, less those that differ by connection. */
  const seen = (answer: Answer) => ({
    status: answer.status,
    type: answer.headers['content-type'],
    authenticate: answer.headers['www-authenticate'],
    rate: answer.headers['ratelimit-policy'],
    id: answer.headers['x-request-id'],
    body: answer.body,
  });

  async function expectSameRefusal(method: string, url: string, sent: Sent, status: number, code: string): Promise<Record<string, unknown>> {
    const both = await bothPorts(method, url, sent);
    expect(seen(both.agent)).toEqual(seen(both.api));
    expect(both.agent.status, both.agent.body).toBe(status);
    expect(both.agent.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    const problem = JSON.parse(both.agent.body) as Record<string, unknown>;
    expect(problem.code).toBe(code);
    return problem;
  }

  const heartbeat = { capacity: CAPACITY, vms: [] };

  beforeAll(async () => {
    h = await startHarness({ clock: new ManualClock(Date.now()) });
    await h.createTenant(TENANT);
    listener = await startAgentListener({
      host: '127.0.0.1',
      port: 0,
      answer: agentCallsOf(h.app),
      recordHttp: httpMetricsOf(h.app),
      log: h.app.log,
      writeLog: (lines) => (logged += lines),
      logLevel: 'info',
    });
    const issued = await h.issueToken(TENANT, 'node:agent');
    node = { token: issued.token, keys: issued.keys };
  });

  afterAll(async () => {
    await listener?.close();
    await h?.close();
  });

  it('enrolls a node and takes its heartbeats, answering as the API port does', async () => {
    const enrolled = await agent('POST', '/v1/nodes', { token: node.token, signWith: node.keys.privateKey, body: { node_id: 'west-1', capacity: CAPACITY } });
    expect(enrolled.status, enrolled.body).toBe(201);
    expect(enrolled.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(enrolled.headers['ratelimit-policy']).toMatch(/^"tenant";q=/);
    const shown = await h.request('GET', `/v1/nodes/west-1?tenant_id=${TENANT}`, { token: h.adminToken });
    expect(shown.json()).toMatchObject({ ...JSON.parse(enrolled.body), vms: [] });

    const viaAgentPort = await agent('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, signWith: node.keys.privateKey, body: heartbeat });
    expect(viaAgentPort.status, viaAgentPort.body).toBe(200);
    const viaApiPort = await h.request('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, signWith: node.keys.privateKey, body: heartbeat });
    expect(viaApiPort.statusCode).toBe(200);
    expect(viaAgentPort.body).toBe(viaApiPort.body);
    expect(viaAgentPort.headers['x-request-id']).toMatch(/^listener-test-/);
  });

  it("writes the worker's request lines to the main thread's log, with the caller's tenant", async () => {
    await agent('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, signWith: node.keys.privateKey, body: heartbeat });
    await expect.poll(() => logged, { timeout: 2000 }).toContain('"route":"/v1/nodes/:node_id/heartbeat"');
    const line = logged
      .trim()
      .split('\n')
      .map((text) => JSON.parse(text) as Record<string, unknown>)
      .find((entry) => entry.route === '/v1/nodes/:node_id/heartbeat');
    expect(line).toMatchObject({ status: 200, tenant: TENANT, msg: 'request completed' });
  });

  it("counts its requests in the API's ppn_http_* metrics, refusals too", async () => {
    const count = async (status: number) => {
      const scrape = (await h.request('GET', '/metrics', { token: h.adminToken })).body;
      const series = `ppn_http_requests_total{method="POST",route="/v1/nodes/:node_id/heartbeat",status="${status}"} `;
      const line = scrape.split('\n').find((text) => text.startsWith(series));
      return line === undefined ? 0 : Number(line.slice(series.length));
    };
    // The worker sends its samples within 200 ms: those of the tests before this one first.
    await listener.flush();
    const [answered, refused] = [await count(200), await count(401)];
    for (let i = 0; i < 3; i++) {
      const beat = await agent('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, signWith: node.keys.privateKey, body: heartbeat });
      expect(beat.status, beat.body).toBe(200);
    }
    expect((await agent('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, body: heartbeat })).status).toBe(401);
    await listener.flush();
    expect(await count(200)).toBe(answered + 3);
    expect(await count(401)).toBe(refused + 1);
    const scrape = (await h.request('GET', '/metrics', { token: h.adminToken })).body;
    expect(scrape).toMatch(/^ppn_http_request_duration_seconds_count\{route="\/v1\/nodes\/:node_id\/heartbeat"\} [1-9]/m);
  });

  it('refuses a copied node token without the node key, as the API port does', async () => {
    await expectSameRefusal('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, body: heartbeat }, 401, 'unauthenticated');
    const stranger = generateKeyPairSync('ed25519');
    const problem = await expectSameRefusal(
      'POST',
      '/v1/nodes/west-1/heartbeat',
      { token: node.token, signWith: stranger.privateKey, body: heartbeat },
      401,
      'unauthenticated',
    );
    expect(problem.signature_error).toBe('wrong_key');
  });

  it('refuses a signature that does not verify over the request: signature_invalid', async () => {
    const { headers } = prepare('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, signWith: node.keys.privateKey, body: heartbeat });
    const other = JSON.stringify({ capacity: { ...CAPACITY, cpus: 64 }, vms: [] });
    const tampered = { ...headers, 'content-digest': contentDigest(Buffer.from(other)) };
    const agentAnswer = await toAgentPort('POST', '/v1/nodes/west-1/heartbeat', tampered, other);
    const apiAnswer = await toApiPort('POST', '/v1/nodes/west-1/heartbeat', tampered, other);
    expect(seen(agentAnswer)).toEqual(seen(apiAnswer));
    expect(JSON.parse(agentAnswer.body)).toMatchObject({ status: 401, signature_error: 'signature_invalid' });
  });

  it('refuses a replayed request, on either port: nonce_reused', async () => {
    const { headers, payload } = prepare('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, signWith: node.keys.privateKey, body: heartbeat });
    expect((await toAgentPort('POST', '/v1/nodes/west-1/heartbeat', headers, payload)).status).toBe(200);
    const again = await toAgentPort('POST', '/v1/nodes/west-1/heartbeat', headers, payload);
    expect(again.status).toBe(401);
    expect(JSON.parse(again.body)).toMatchObject({ signature_error: 'nonce_reused' });
    // One record of nonces for both ports: the API port refuses it too.
    const onApiPort = await toApiPort('POST', '/v1/nodes/west-1/heartbeat', headers, payload);
    expect(seen(onApiPort)).toEqual(seen(again));
  });

  it('authenticates a request before it looks at its body, as the API port does', async () => {
    const invalid = { capacity: { ...CAPACITY, cpus: 0 }, vms: [] };
    await expectSameRefusal('POST', '/v1/nodes/west-1/heartbeat', { body: invalid }, 401, 'unauthenticated');
    await expectSameRefusal('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, body: invalid }, 401, 'unauthenticated');
    await expectSameRefusal('POST', '/v1/nodes/west-1/heartbeat', { payload: '{"capacity":' }, 401, 'unauthenticated');
    await expectSameRefusal('POST', '/v1/nodes/west-1/heartbeat', { payload: 'x'.repeat(70_000) }, 401, 'unauthenticated');
    // Once authenticated, the body's own refusal.
    await expectSameRefusal(
      'POST',
      '/v1/nodes/west-1/heartbeat',
      { token: node.token, payload: 'text', headers: { 'content-type': 'text/plain' } },
      415,
      'unsupported_media_type',
    );
    const problem = await expectSameRefusal(
      'POST',
      '/v1/nodes/west-1/heartbeat',
      { token: node.token, signWith: node.keys.privateKey, body: invalid },
      400,
      'invalid_input',
    );
    expect(problem.field).toBe('capacity.cpus');
    await expectSameRefusal('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, signWith: node.keys.privateKey, payload: '{"capacity":' }, 400, 'invalid_input');
    await expectSameRefusal('PUT', '/v1/nodes/west-1/vms/vm-x/console', { token: node.token, signWith: node.keys.privateKey, body: { data: '!' } }, 400, 'invalid_input');
  });

  it('refuses a token that is not a node:agent token: forbidden', async () => {
    const admin = await h.issueToken(TENANT, 'service:tenant-admin');
    await expectSameRefusal('POST', '/v1/nodes/west-1/heartbeat', { token: admin.token, body: heartbeat }, 403, 'forbidden');
    await expectSameRefusal('POST', '/v1/nodes', { token: admin.token, payload: 'not json' }, 403, 'forbidden');
  });

  it('serves only the node routes and the version: others are not found there', async () => {
    const vms = await agent('GET', '/v1/vms', { token: node.token, signWith: node.keys.privateKey });
    expect(vms.status).toBe(404);
    expect(JSON.parse(vms.body)).toMatchObject({ code: 'not_found' });
    const tenants = await agent('POST', '/v1/tenants', { token: h.adminToken, body: { tenant_id: 'nope' } });
    expect(tenants.status).toBe(404);
    const version = await agent('GET', '/v1/version');
    expect(version.status).toBe(200);
    expect(version.body).toBe((await toApiPort('GET', '/v1/version', {}, undefined)).body);
  });

  it('starts its worker again when it dies, on the same port', async () => {
    const dead = listener.worker();
    await dead.terminate();
    await expect.poll(async () => (await agent('GET', '/v1/version').catch(() => ({ status: 0 }))).status, { timeout: 5000, interval: 100 }).toBe(200);
    expect(listener.worker()).not.toBe(dead);
    const beat = await agent('POST', '/v1/nodes/west-1/heartbeat', { token: node.token, signWith: node.keys.privateKey, body: heartbeat });
    expect(beat.status, beat.body).toBe(200);
  });
});
