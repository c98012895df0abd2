/**
 * The per-tenant API rate limit over HTTP (SPEC §6): at most api_rate_limit_rpm authenticated
 * requests per tenant in any 60 s, 429 problem+json with Retry-After beyond it, RateLimit-Policy and
 * RateLimit headers (draft-ietf-httpapi-ratelimit-headers) on every authenticated response, and no
 * effect on other tenants. The window is counted in whole seconds (the current one and the 60 before
 * it), so a request's slot frees when the 61st second after its own begins. The clock is a
 * ManualClock: the minute passes by advancing it.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { startHarness, type Harness } from '../support/harness.js';

const POLICY = '"tenant";q=60;w=60';
const RATELIMIT = /^"tenant";r=(\d+);t=(\d+)$/;

function rateLimitOf(res: LightMyRequestResponse): { remaining: number; reset: number } {
  const header = res.headers['ratelimit'];
  expect(header, `RateLimit header on ${res.statusCode} ${res.body}`).toMatch(RATELIMIT);
  const [, r, t] = RATELIMIT.exec(String(header))!;
  return { remaining: Number(r), reset: Number(t) };
}

describe('per-tenant API rate limit', () => {
  let h: Harness;
  let clock: ManualClock;
  let acme: string;
  let globex: string;

  beforeEach(async () => {
    clock = new ManualClock(Date.parse('2026-03-01T12:00:00Z'));
    h = await startHarness({ clock });
    await h.createTenant('acme', { api_rate_limit_rpm: 60 });
    await h.createTenant('globex', { api_rate_limit_rpm: 60 });
    acme = (await h.issueToken('acme', 'service:tenant-admin')).token;
    globex = (await h.issueToken('globex', 'service:tenant-admin')).token;
  });
  afterEach(async () => {
    await h.close();
  });

  const listVms = (token: string) => h.request('GET', '/v1/vms', { token });

  it('admits 60 requests in a minute and answers the 61st with 429 problem+json and Retry-After', async () => {
    // One request every 500 ms: the 60th lands at t=29.5 s, the 61st at t=30 s.
    for (let i = 0; i < 60; i++) {
      const res = await listVms(acme);
      expect(res.statusCode, `request ${i + 1}`).toBe(200);
      clock.advance(500);
    }
    const res = await listVms(acme);
    expect(res.statusCode).toBe(429);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ type: 'urn:ppn:problem:rate-limited', title: 'Rate limit exceeded', status: 429, instance: '/v1/vms' });
    expect(res.json().detail).toContain('60 requests per minute');
    // The first second (t=0) leaves the window at t=61 s: 31 s from now.
    expect(res.headers['retry-after']).toBe('31');
    expect(rateLimitOf(res)).toEqual({ remaining: 0, reset: 31 });
  });

  it('sends RateLimit-Policy and a counting-down RateLimit on every authenticated response', async () => {
    const responses: LightMyRequestResponse[] = [];
    const vm = await h.request('POST', '/v1/vms', { token: acme, body: { name: 'web-1' } });
    expect(vm.statusCode).toBe(201);
    responses.push(vm);
    responses.push(await h.request('GET', `/v1/vms/${vm.json().vm_id}`, { token: acme }));
    responses.push(await h.request('GET', '/v1/whoami', { token: acme }));
    responses.push(await h.request('GET', '/v1/tenants/acme', { token: acme }));
    responses.push(await h.request('GET', '/v1/vms/vm-00000000000000000000000000', { token: acme }));
    responses.push(await h.request('POST', '/v1/vms', { token: acme, body: { name: 'Not A Label' } }));
    while (responses.length < 60) responses.push(await listVms(acme));
    responses.push(await listVms(acme));

    expect(responses.slice(0, 6).map((r) => r.statusCode)).toEqual([201, 200, 200, 200, 404, 400]);
    expect(responses.slice(6, 60).every((r) => r.statusCode === 200)).toBe(true);
    expect(responses[60]!.statusCode).toBe(429);
    for (const res of responses) expect(res.headers['ratelimit-policy']).toBe(POLICY);
    expect(responses.map((r) => rateLimitOf(r).remaining)).toEqual([...Array.from({ length: 60 }, (_, i) => 59 - i), 0]);
    // While requests remain none has to wait; once none remain the wait is the time until a slot frees.
    for (const res of responses.slice(0, 59)) expect(rateLimitOf(res).reset).toBe(0);
    expect(rateLimitOf(responses[59]!).reset).toBe(61);
    expect(rateLimitOf(responses[60]!).reset).toBe(61);
    expect(responses[60]!.headers['retry-after']).toBe('61');
  });

  it('counts every token of the tenant against one limit', async () => {
    const reader = (await h.issueToken('acme', 'tenant:read')).token;
    for (let i = 0; i < 30; i++) expect((await listVms(acme)).statusCode).toBe(200);
    for (let i = 0; i < 30; i++) expect((await listVms(reader)).statusCode).toBe(200);
    expect((await listVms(reader)).statusCode).toBe(429);
    expect((await listVms(acme)).statusCode).toBe(429);
  });

  it("leaves another tenant's requests alone while one tenant is limited", async () => {
    for (let i = 0; i < 60; i++) await listVms(acme);
    expect((await listVms(acme)).statusCode).toBe(429);

    const other = await listVms(globex);
    expect(other.statusCode).toBe(200);
    expect(other.headers['ratelimit-policy']).toBe(POLICY);
    expect(rateLimitOf(other)).toEqual({ remaining: 59, reset: 0 });
    for (let i = 0; i < 59; i++) expect((await listVms(globex)).statusCode).toBe(200);

    // The limited tenant's refused requests did not use up anything of globex's, nor of its own.
    expect((await listVms(globex)).statusCode).toBe(429);
    expect((await listVms(acme)).statusCode).toBe(429);
  });

  it('admits requests again once the minute has passed', async () => {
    for (let i = 0; i < 60; i++) await listVms(acme);
    const refused = await listVms(acme);
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBe(61);

    clock.advance(60_999);
    expect((await listVms(acme)).statusCode).toBe(429);
    clock.advance(1);
    const statuses = [];
    for (let i = 0; i < 61; i++) statuses.push((await listVms(acme)).statusCode);
    expect(statuses.slice(0, 60).every((s) => s === 200)).toBe(true);
    expect(statuses[60]).toBe(429);
  });

  it('refused requests do not count: waiting out Retry-After is enough however often the client retried', async () => {
    for (let i = 0; i < 60; i++) await listVms(acme);
    clock.advance(10_000);
    const first = await listVms(acme);
    expect(first.headers['retry-after']).toBe('51');
    for (let i = 0; i < 100; i++) expect((await listVms(acme)).statusCode).toBe(429);
    clock.advance(51_000);
    expect((await listVms(acme)).statusCode).toBe(200);
  });

  it('slides: 30 requests at t=0 and 30 at t=30 s leave exactly 30 for t=61 s', async () => {
    const burst = async (n: number) => {
      const statuses: number[] = [];
      for (let i = 0; i < n; i++) statuses.push((await listVms(acme)).statusCode);
      return statuses;
    };
    expect(await burst(30)).toEqual(Array(30).fill(200));
    clock.advance(30_000);
    expect(await burst(30)).toEqual(Array(30).fill(200));
    clock.advance(31_000);
    expect(await burst(31)).toEqual([...Array(30).fill(200), 429]);
    // The requests of t=30 s stay in the window until t=91 s; a fixed-minute counter would have reset.
    const refused = await listVms(acme);
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('30');
  });

  it('honours a Retry-After that is shorter than a minute by admitting exactly the freed slots', async () => {
    // 60 requests spread over 29.5 s, two in each second; after the 429 at 30 s, Retry-After frees
    // only the first second's two.
    for (let i = 0; i < 60; i++) {
      await listVms(acme);
      clock.advance(500);
    }
    const refused = await listVms(acme);
    const wait = Number(refused.headers['retry-after']);
    expect(Number.isInteger(wait) && wait >= 1).toBe(true);
    expect(wait).toBe(31);
    clock.advance(wait * 1000);
    expect((await listVms(acme)).statusCode).toBe(200);
    expect((await listVms(acme)).statusCode).toBe(200);
    expect((await listVms(acme)).statusCode).toBe(429);
  });
});
