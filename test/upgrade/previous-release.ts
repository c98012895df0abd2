/**
 * The previous release, built from this clone's own history, for the upgrade tests.
 *
 * Why this way: the release is a commit of this repository (PREVIOUS_RELEASE), so its history is
 * the one source that needs no network and no second copy of anything. `git archive` writes the
 * commit's tree into a temporary directory; the current node_modules is linked into it (the release's
 * dependencies are checked to be the ones installed now: a test running it on other versions would
 * test something that was never released); and the TypeScript compiler of this checkout emits its
 * JavaScript without type-checking it (`--noCheck`: the release was checked when it was made, and a
 * newer compiler or @types could only fail it over types). The build is cached in the system's
 * temporary directory by commit, so the SQLite and PostgreSQL halves of the suite build it once.
 *
 * A shallow clone lacks the commit: the test then fails, saying to fetch the full history. It never
 * skips, which would let the upgrade go untested without anyone noticing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The release before this one: its version and the commit it was made from. */
export const PREVIOUS_RELEASE = { version: '0.1.0', commit: '19016b163cafcfca97ca76ee8183de1d82558ed7' } as const;

export interface ReleaseBuild {
  version: string;
  /** Its bins, built. */
  server: string;
  fs: string;
}

function binsOf(dir: string): ReleaseBuild {
  return { version: PREVIOUS_RELEASE.version, server: join(dir, 'dist/src/cli/service-vm-tenant.js'), fs: join(dir, 'dist/src/cli/service-fs.js') };
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
  const cached = join(tmpdir(), `ppn-release-${PREVIOUS_RELEASE.commit}`);
  if (existsSync(binsOf(cached).server)) return binsOf(cached);

  const dir = mkdtempSync(`${cached}.building-`);
  try {
    execFileSync('sh', ['-c', `git -C "$0" archive --format=tar "$1" | tar -x -C "$2"`, root, PREVIOUS_RELEASE.commit, dir]);
    const dependencies = (path: string) => JSON.stringify((JSON.parse(readFileSync(path, 'utf8')) as { dependencies: unknown }).dependencies);
    if (dependencies(join(dir, 'package.json')) !== dependencies(join(root, 'package.json'))) {
      throw new Error(
        `release ${PREVIOUS_RELEASE.version}'s dependencies differ from those installed now: the upgrade test runs it on this checkout's node_modules, so it needs them the same (or an install of the release's own)`,
      );
    }
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
