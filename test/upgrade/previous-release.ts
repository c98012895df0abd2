/**
 * The previous release, built from this clone's own history, for the upgrade tests.
 *
 * Why this way: the release is a commit of this repository (PREVIOUS_RELEASE), so its history is
 * the one source that needs no network and no second copy of anything. `git archive` writes the
 * commit's tree into a temporary directory; the current node_modules is linked into it (each of
 * the release's dependencies is checked to be installed in the same major version, so that patch
 * and minor updates since do not stop the test, but anything that may change an API does); and the
 * TypeScript compiler of this checkout emits its JavaScript without type-checking it (`--noCheck`: the release was checked when it was made, and a
 * newer compiler or @types could only fail it over types). The build is cached in the system's
 * temporary directory by commit and checkout, so the SQLite and PostgreSQL halves of the suite build it once.
 *
 * A shallow clone lacks the commit: the test then fails, saying to fetch the full history. It never
 * skips, which would let the upgrade go untested without anyone noticing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The release before this one: its version and the commit it was made from. */
export const PREVIOUS_RELEASE = { version: '0.1.0', commit: '19016b163cafcfca97ca76ee8183de1d82558ed7' } as const;

export interface ReleaseBuild {
  version: string;
  /** Its service-vm-tenant, built. */
  server: string;
}

function binsOf(dir: string): ReleaseBuild {
  return { version: PREVIOUS_RELEASE.version, server: join(dir, 'dist/src/cli/service-vm-tenant.js') };
}

/** Builds the previous release, or finds it built; throws, saying why, when it cannot. */
export function buildPreviousRelease(): ReleaseBuild {
  const root = resolve('.');
  const found = spawnSync('git', ['-C', root, 'cat-file', '-e', `${PREVIOUS_RELEASE.commit}^{commit}`], { encoding: 'utf8' });
  if (found.error || found.status !== 0) {
    throw new Error(
      `the upgrade test needs the previous release ${PREVIOUS_RELEASE.version} (commit ${PREVIOUS_RELEASE.commit}) from this clone's history, and it is not there` +
        ` (${found.error?.message ?? found.stderr.trim()}): clone without --depth, or run \`git fetch --unshallow\``,
    );
  }
  const manifest = execFileSync('git', ['-C', root, 'show', `${PREVIOUS_RELEASE.commit}:package.json`], { encoding: 'utf8' });
  const mismatched = incompatibleDependencies(manifest, join(root, 'node_modules'));
  if (mismatched.length > 0) {
    throw new Error(
      `release ${PREVIOUS_RELEASE.version} needs ${mismatched.join(', ')}, and node_modules has another major version: the upgrade test runs it on this checkout's node_modules, so it needs the same majors (or an install of the release's own)`,
    );
  }
  // By commit and checkout: the build links this checkout's node_modules.
  const checkout = createHash('sha256').update(root).digest('hex').slice(0, 12);
  const cached = join(tmpdir(), `ppn-release-${PREVIOUS_RELEASE.commit.slice(0, 12)}-${checkout}`);
  if (existsSync(binsOf(cached).server)) return binsOf(cached);

  const dir = mkdtempSync(`${cached}.building-`);
  try {
    execFileSync('sh', ['-c', `git -C "$0" archive --format=tar "$1" | tar -x -C "$2"`, root, PREVIOUS_RELEASE.commit, dir]);
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.build.json'), '--noCheck'], { stdio: 'pipe' });
    // Another run may have finished first: either build is the same.
    if (!existsSync(binsOf(cached).server)) renameSync(dir, cached);
  } catch (error) {
    throw new Error(`building release ${PREVIOUS_RELEASE.version} failed: ${(error as Error).message}`, { cause: error });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return binsOf(cached);
}

/**
 * The release's runtime dependencies whose installed version is of another major version (another
 * minor, below 1.0) than the one it pinned: patch and minor updates keep their APIs, others may not.
 */
function incompatibleDependencies(manifest: string, nodeModules: string): string[] {
  const wanted = (JSON.parse(manifest) as { dependencies: Record<string, string> }).dependencies;
  const series = (version: string) => (version.startsWith('0.') ? version.split('.').slice(0, 2).join('.') : version.split('.')[0]);
  return Object.entries(wanted)
    .filter(([name, version]) => {
      const installed = join(nodeModules, name, 'package.json');
      return !existsSync(installed) || series((JSON.parse(readFileSync(installed, 'utf8')) as { version: string }).version) !== series(version);
    })
    .map(([name, version]) => `${name}@${version}`);
}
