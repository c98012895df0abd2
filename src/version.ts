/**
 * This release's version and the version-skew policy (docs/operations.md, "Upgrades and version
 * skew"). The version has one source, package.json's "version", read once when this module loads;
 * the bins' --version, /readyz and GET /v1/version all show it.
 *
 * The policy, by minor version (major.minor; the patch never matters):
 * - server replicas: the same or adjacent minor versions side by side, during a rolling upgrade;
 * - the node agent (service-vm-host): the server's minor version or the one before (upgrade the
 *   servers first, then the agents);
 * - the client (ppn): within one minor version of the server, older or newer.
 * Whoever finds itself outside the policy warns and carries on: a refusal would stop a fleet over
 * what may only be a missing feature.
 */
import { readFileSync } from 'node:fs';

/** The major and minor version, the part the skew policy compares. */
interface Release {
  major: number;
  minor: number;
}

/** The version of this package, from the package.json above this file (in src/ or dist/src/). */
function readPackageVersion(): string {
  for (let dir = new URL('.', import.meta.url); dir.pathname !== '/'; dir = new URL('..', dir)) {
    try {
      const manifest = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'ppn-control-plane' && manifest.version) return manifest.version;
    } catch {
      // not here: look one directory up
    }
  }
  throw new Error('no package.json of ppn-control-plane above this file: the package is installed incompletely');
}

export const VERSION = readPackageVersion();

/** The API's version, the path prefix of its routes. */
export const API_VERSION = 'v1';

function parseRelease(version: string): Release | null {
  const match = /^(\d+)\.(\d+)\.\d+/.exec(version);
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : null;
}

/** The release `steps` minor versions before `version`'s, as "major.minor.0" (never below x.0). */
function earlierRelease(version: string, steps: number): string {
  const release = parseRelease(version);
  if (!release) throw new RangeError(`not a version: ${version}`);
  return `${release.major}.${Math.max(0, release.minor - steps)}.0`;
}

/** How far `a` is ahead of `b` in minor versions; Infinity (either way) across a major version. */
function minorsAhead(a: Release, b: Release): number {
  if (a.major !== b.major) return a.major > b.major ? Infinity : -Infinity;
  return a.minor - b.minor;
}

/** What a server says of itself at GET /v1/version. */
export interface ServerVersion {
  version: string;
  api: string;
  /** The oldest agent and client this server supports. */
  min_agent: string;
  min_client: string;
  /** The name of the latest store migration this server knows. */
  store_schema: string;
}

export function describeServerVersion(storeSchema: string): ServerVersion {
  return { version: VERSION, api: API_VERSION, min_agent: earlierRelease(VERSION, 1), min_client: earlierRelease(VERSION, 1), store_schema: storeSchema };
}

/** How many minor versions ahead of the server each kind of program may be. */
const AHEAD_ALLOWED = { agent: 0, client: 1 } as const;

/**
 * The warning a program of `kind` at version `own` should print about the server that answered
 * GET /v1/version with `server`, or null when the two are within the policy. The server's minimum
 * says how old a program it still serves; this program's own rule says how old a server it can use.
 */
export function versionSkewWarning(kind: 'agent' | 'client', own: string, server: Pick<ServerVersion, 'version' | 'min_agent' | 'min_client'>): string | null {
  const name = kind === 'agent' ? 'service-vm-host' : 'ppn';
  const ownRelease = parseRelease(own);
  const serverRelease = parseRelease(server.version);
  if (!ownRelease || !serverRelease) return `warning: cannot compare ${name} ${own} with server ${server.version}: not a version`;
  const minimum = parseRelease(kind === 'agent' ? server.min_agent : server.min_client);
  if (minimum && minorsAhead(ownRelease, minimum) < 0) {
    return `warning: ${name} ${own} is older than server ${server.version} supports (at least ${kind === 'agent' ? server.min_agent : server.min_client}); upgrade ${name}`;
  }
  if (minorsAhead(ownRelease, serverRelease) > AHEAD_ALLOWED[kind]) {
    const supported = kind === 'agent' ? 'the same minor version' : 'at most one minor version';
    return `warning: ${name} ${own} is newer than server ${server.version} (${supported} is supported); upgrade the servers first`;
  }
  return null;
}

/**
 * What a server that answers GET /v1/version with 404 is taken to say: it is 0.1.0, the last
 * release without the route, which set no minimum for agents or clients.
 */
const BEFORE_VERSION_ROUTE = { version: '0.1.0', min_agent: '0.0.0', min_client: '0.0.0' } as const;

/**
 * Asks the server its version with `fetchVersion` (which answers null for a 404) and passes
 * `warn` the skew warning, if any. The agent and ppn both call this; it never throws, since a
 * version check that stops a program would be worse than the skew it reports.
 */
export async function warnOfVersionSkew(kind: 'agent' | 'client', fetchVersion: () => Promise<unknown>, warn: (message: string) => void): Promise<void> {
  let answer: unknown;
  try {
    answer = (await fetchVersion()) ?? BEFORE_VERSION_ROUTE;
  } catch {
    return; // unreachable or refusing: the program's own requests will say so
  }
  const server = answer as Partial<ServerVersion>;
  if (typeof server.version !== 'string' || typeof server.min_agent !== 'string' || typeof server.min_client !== 'string') return;
  const warning = versionSkewWarning(kind, VERSION, { version: server.version, min_agent: server.min_agent, min_client: server.min_client });
  if (warning) warn(warning);
}
