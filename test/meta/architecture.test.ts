/**
 * The layout is the architecture (docs/design/README.md); these checks keep it so. Each rule reads
 * the import lines of the source files.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from '../support/source-files.js';

const files = sourceFiles('src').map((path) => ({
  path: relative('src', path),
  imports: [...readFileSync(path, 'utf8').matchAll(/^import[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]!),
}));

/**
 * The graph of src/ by its relative static imports (type-only ones too: they tie the files together
 * just the same), each edge a file to the file it names, `.js` read as the `.ts` beside it.
 */
function importGraph(): Map<string, string[]> {
  const known = new Set(files.map((f) => f.path));
  const graph = new Map<string, string[]>();
  for (const path of known) {
    const text = readFileSync(join('src', path), 'utf8');
    const specifiers = [...text.matchAll(/^(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]/gm)].map((m) => (m[1] ?? m[2])!);
    const targets = specifiers.filter((s) => s.startsWith('.')).map((s) => normalize(join(dirname(path), s)).replace(/\.js$/, '.ts'));
    graph.set(path, [...new Set(targets.filter((t) => known.has(t)))]);
  }
  return graph;
}

/** Every cycle a depth-first walk meets, each as its files in import order, back to the first. */
function importCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const onPath: string[] = [];
  const visit = (file: string): void => {
    const at = onPath.indexOf(file);
    if (at >= 0) {
      cycles.push([...onPath.slice(at), file]);
      return;
    }
    if (done.has(file)) return;
    onPath.push(file);
    for (const next of graph.get(file) ?? []) visit(next);
    onPath.pop();
    done.add(file);
  };
  for (const file of [...graph.keys()].sort()) visit(file);
  return cycles;
}

function importers(predicate: (specifier: string) => boolean): string[] {
  return files.filter((f) => f.imports.some(predicate)).map((f) => f.path);
}

describe('architecture', () => {
  it('only store/sqlite imports better-sqlite3', () => {
    expect(importers((s) => s === 'better-sqlite3').every((p) => p.startsWith('store/sqlite/'))).toBe(true);
  });

  it('only store/postgres imports pg', () => {
    const users = importers((s) => s === 'pg');
    expect(users.length).toBeGreaterThan(0);
    expect(users.every((p) => p.startsWith('store/postgres/'))).toBe(true);
  });

  it('the pure cores import no database, HTTP, filesystem or store code', () => {
    const pure = files.filter((f) => /^(tokens|ledger|quota|ratelimit|httpsig)\//.test(f.path));
    expect(pure.length).toBeGreaterThan(5);
    for (const file of pure) {
      const offending = file.imports.filter(
        (s) => /^(kysely|better-sqlite3|pg|fastify|node:fs|node:http|node:net|node:child_process)$/.test(s) || s.includes('/store/') || s.includes('/api/'),
      );
      expect(offending, file.path).toEqual([]);
    }
  });

  it('only agent/qemu spawns processes: no other file imports node:child_process', () => {
    expect(importers((s) => s === 'node:child_process' || s === 'child_process')).toEqual(['agent/qemu.ts']);
  });

  it('routes never build SQL: no route imports kysely', () => {
    expect(importers((s) => s === 'kysely').filter((p) => p.startsWith('api/routes/'))).toEqual([]);
  });

  it('control operations know nothing of HTTP', () => {
    expect(importers((s) => s === 'fastify' || s.includes('/api/')).filter((p) => p.startsWith('control/'))).toEqual([]);
  });

  it('no import cycle among the source files', () => {
    const graph = importGraph();
    expect(graph.get('api/app.ts')).toContain('api/routes/vms.ts');
    expect(importCycles(graph).map((cycle) => cycle.join(' → '))).toEqual([]);
  });

  it('the ppn client reaches the server over the public API only: nothing it imports, directly or not, is in store/, control/ or api/', () => {
    const graph = importGraph();
    const reached = new Set<string>();
    const visit = (file: string): void => {
      if (reached.has(file)) return;
      reached.add(file);
      for (const next of graph.get(file) ?? []) visit(next);
    };
    visit('cli/ppn.ts');
    expect(reached).toContain('cli/client.ts');
    expect([...reached].filter((file) => /^(store|control|api)\//.test(file))).toEqual([]);
  });

  it('only the problem mapper turns domain errors into statuses', () => {
    const files = sourceFiles('src').filter((p) => !p.endsWith('problem.ts'));
    for (const path of files) expect(readFileSync(path, 'utf8'), path).not.toMatch(/\.code\((?:4|5)\d\d\)/);
  });
});
