/**
 * The server serves the web console at /console/ (src/api/console.ts) from its files, with the
 * headers a browser needs to cache it right and to run nothing but its own scripts. The API tests'
 * stand-in console (test/fixtures/console) is served here; test/console/browser.test.ts loads the built one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';
import { expectProblem } from '../api/expectations.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const get = (url: string, headers: Record<string, string> = {}) => h.app.inject({ method: 'GET', url, headers });

/** The policy's directives by name. */
function directives(policy: string): Map<string, string[]> {
  return new Map(
    policy.split(';').map((part) => {
      const [name, ...values] = part.trim().split(/\s+/);
      return [name!, values];
    }),
  );
}

describe('the console is served at /console/', () => {
  it.each(['/console/', '/console', '/console/index.html'])('%s answers the page, revalidated on every load', async (url) => {
    const page = await get(url);
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.body).toContain('A stand-in for the built console');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers.etag).toBeDefined();
  });

  it('a hashed asset may be cached for a year and is never revalidated', async () => {
    const asset = await get('/console/assets/app-Fx1x2x3x.css');
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('an unchanged page is answered 304 to a conditional request', async () => {
    const first = await get('/console/');
    const again = await get('/console/', { 'if-none-match': String(first.headers.etag) });
    expect(again.statusCode).toBe(304);
  });

  it('every file carries a policy that runs only same-origin scripts, loads from no other origin and may not be framed', async () => {
    for (const url of ['/console/', '/console/assets/app-Fx1x2x3x.css']) {
      const answer = await get(url);
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['x-frame-options']).toBe('DENY');
      const policy = directives(String(answer.headers['content-security-policy']));
      expect(policy.get('default-src')).toEqual(["'self'"]);
      expect(policy.get('script-src')).toEqual(["'self'"]);
      expect(policy.get('connect-src')).toEqual(["'self'"]);
      expect(policy.get('frame-ancestors')).toEqual(["'none'"]);
      expect(policy.get('object-src')).toEqual(["'none'"]);
      const sources = [...policy.values()].flat();
      expect(sources.filter((source) => /unsafe|https?:|\*/.test(source))).toEqual([]);
    }
  });

  it('a file the console does not have is a problem+json 404', async () => {
    expect(expectProblem(await get('/console/assets/missing-00000000.js'), 404).code).toBe('not_found');
  });

  it.each(['/console/../package.json', '/console/%2e%2e/package.json', '/console/..%2fpackage.json', '/console/.gitignore'])(
    '%s reaches nothing outside the console',
    async (url) => {
      const answer = await get(url);
      expect(answer.statusCode).toBeGreaterThanOrEqual(400);
      expect(answer.body).not.toContain('"name"');
    },
  );

  it('the console needs no token: the page asks nothing, its API calls do', async () => {
    const answer = await get('/console/', { authorization: 'Bearer not-a-token' });
    expect(answer.statusCode).toBe(200);
  });
});
