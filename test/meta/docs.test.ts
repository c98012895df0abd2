/**
 * The docs say what the code does: the statements a reader acts on are checked against the source
 * of truth they describe (package.json, src/, git's ignore rules).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesUnder } from '../support/source-files.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  bin: Record<string, string>;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const readme = readFileSync('README.md', 'utf8');

/** The packages a set of folders and files imports (bare specifiers, reduced to the package name). */
function importedPackages(paths: string[]): Set<string> {
  const names = new Set<string>();
  const files = paths.flatMap((path) => (statSync(path).isDirectory() ? filesUnder(path) : [path]));
  for (const path of files.filter((p) => /\.[jt]sx?$/.test(p))) {
    for (const [, specifier] of readFileSync(path, 'utf8').matchAll(/(?:^import|^export)[^'"]*['"]([^'".][^'"]*)['"]/gm)) {
      const parts = specifier!.split('/');
      names.add(specifier!.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!);
    }
  }
  return names;
}

/** The commands a package installs (its `bin`), by which scripts run it. */
function commandsOf(name: string): string[] {
  const { bin } = JSON.parse(readFileSync(join('node_modules', name, 'package.json'), 'utf8')) as { bin?: string | Record<string, string> };
  return typeof bin === 'string' ? [name] : Object.keys(bin ?? {});
}

const NUMBERS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six'];

describe('the docs agree with the code', () => {
  it("the README counts and describes exactly package.json's bin entries", () => {
    const claim = /All (\w+) are `bin` entries/.exec(readme);
    expect(claim).not.toBeNull();
    expect(NUMBERS.indexOf(claim![1]!.toLowerCase())).toBe(Object.keys(pkg.bin).length);
    const described = [...readme.matchAll(/^### `([a-z-]+)`$/gm)].map((m) => m[1]);
    expect(described.sort()).toEqual(Object.keys(pkg.bin).sort());
  });

  it('every runtime dependency is imported by the source', () => {
    const used = importedPackages(['src']);
    expect(Object.keys(pkg.dependencies).filter((name) => !used.has(name))).toEqual([]);
  });

  it('every development dependency is imported by tests, benchmarks or the web console, run by a script, or types a used package', () => {
    const used = importedPackages(['src', 'test', 'bench', 'console', 'eslint.config.js', 'vitest.config.ts']);
    const scripts = [...Object.values(pkg.scripts), ...filesUnder('scripts').map((p) => readFileSync(p, 'utf8'))].join('\n');
    const unused = Object.keys(pkg.devDependencies).filter((name) => {
      if (used.has(name) || commandsOf(name).some((command) => new RegExp(`\\b${command}\\b`).test(scripts))) return false;
      const typed = name.startsWith('@types/') ? name.slice('@types/'.length) : undefined;
      return !(typed && (used.has(typed) || typed === 'node'));
    });
    expect(unused).toEqual([]);
  });

  it('the design map has a row for every folder of src/, and lists as not built only folders that do not exist', () => {
    const design = readFileSync('docs/design/README.md', 'utf8');
    const rows = [...design.matchAll(/^\| `([a-z/-]+)\/` \|/gm)].map((m) => m[1]!);
    const folders = readdirSync('src', { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders.filter((folder) => !rows.includes(folder))).toEqual([]);
    const section = /These are not built yet:\n\n((?:- .*\n)+)/.exec(design);
    const unbuilt = section ? [...section[1]!.matchAll(/`([a-z-]+)\/`/g)].map((m) => m[1]!) : [];
    for (const folder of unbuilt) expect(existsSync(join('src', folder)), folder).toBe(false);
  });

  it('no doc says that changing api_rate_limit_rpm restarts the window: the limiter keeps the newest requests', () => {
    for (const path of ['README.md', ...filesUnder('docs')]) {
      expect(readFileSync(path, 'utf8'), path).not.toMatch(/afresh|restarts? the (rate-limit )?window|window (is )?reset/i);
    }
  });

  it('the key pair the walk-through makes in the project directory is ignored by git', () => {
    const walkthrough = /<!-- walkthrough:start -->([\s\S]*?)<!-- walkthrough:end -->/.exec(readme)![1]!;
    const key = /ppn keygen --out (\S+)/.exec(walkthrough)![1]!;
    for (const file of [key, `${key}.pub`]) expect(() => execFileSync('git', ['check-ignore', '-q', file])).not.toThrow();
  });
});
