/**
 * The supported Node.js versions (package.json "engines", docs/operations.md) hold for the whole
 * dependency tree as locked, and CI tests a release of each line inside that range.
 */
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const supported = (JSON.parse(readFileSync('package.json', 'utf8')) as { engines: { node: string } }).engines.node;
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as {
  packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
};

/** The first release of each line the range admits: `^20.19.0 || ^22.13.0` gives 20.19.0 and 22.13.0. */
function oldestOfEachLine(range: string): string[] {
  return new semver.Range(range).set.map((comparators) => semver.minVersion(new semver.Range(comparators.map((c) => c.value).join(' ')))!.version);
}

describe('supported Node.js versions', () => {
  it('every locked package admits the oldest supported release of each Node.js line, so npm ci warns of no engine', () => {
    const oldest = oldestOfEachLine(supported);
    expect(oldest.map((v) => semver.major(v))).toEqual([20, 22, 24]);
    const refusals = Object.entries(lock.packages).flatMap(([path, entry]) => {
      // Very old packages wrote engines as an array; npm ignores that form.
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (!path || !range) return [];
      return oldest.filter((version) => !semver.satisfies(version, range)).map((version) => `${path}@${entry.version} (${range}) refuses ${version}`);
    });
    expect(refusals).toEqual([]);
  });

  it('the release CI tests on each line is inside the supported range', () => {
    const script = readFileSync('scripts/test-node.sh', 'utf8');
    const releases = [...script.matchAll(/\[(\d+)\]=(\d+\.\d+\.\d+)/g)].map((m) => ({ line: Number(m[1]), version: m[2]! }));
    expect(releases.map((r) => r.line).sort()).toEqual([22, 24]);
    for (const { line, version } of releases) {
      expect(semver.major(version), version).toBe(line);
      expect(semver.satisfies(version, supported), version).toBe(true);
    }
  });

  // light-my-request (Fastify's inject) is held to a cookie release that supports Node.js 20 (package.json
  // "overrides"); this is the one call it makes into it.
  it("Fastify's inject sends the cookies it is given as the Cookie header", async () => {
    const app = Fastify();
    app.get('/', (request) => ({ cookie: request.headers.cookie }));
    const response = await app.inject({ method: 'GET', url: '/', cookies: { session: 'abc123', theme: 'dark' } });
    expect(response.json()).toEqual({ cookie: 'session=abc123; theme=dark' });
    await app.close();
  });
});
