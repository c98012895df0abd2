/**
 * On SQLite the server keeps each tenant row between requests until it writes that row
 * (findTenantForRequest, src/store/tenants.ts), so every statement in src/ that writes the tenants
 * table must say so through tenantRowWritten first, or a request would act on a stale row: an old
 * rate limit, a suspension missed, a VM list from before a create. This check finds each such
 * statement and looks for the call in the lines just above it. The migrations run before serving.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from '../support/source-files.js';

/** Kysely's builders on the tenants table, and SQL text writing it. */
const WRITE = /(?:updateTable|insertInto|deleteFrom|replaceInto|mergeInto)\(\s*'tenants'\s*\)|\b(?:update|insert\s+into|delete\s+from|replace\s+into)\s+"?tenants"?\b/i;
/** How far above the statement the call may stand: the start of its function. */
const LINES_ABOVE = 6;

/**
 * Lines (1-based) of writes with no tenantRowWritten call just above them. A write compiled once
 * (`const name = prepareQuery(…)`) gives notice where it runs: every call of `name(` must have one.
 */
function writesWithoutNotice(text: string): number[] {
  const lines = text.split('\n');
  const noticed = (i: number) => lines.slice(Math.max(0, i - LINES_ABOVE), i + 1).some((line) => line.includes('tenantRowWritten('));
  const missing: number[] = [];
  lines.forEach((line, i) => {
    if (!WRITE.test(line) || noticed(i)) return;
    const prepared = lines
      .slice(Math.max(0, i - LINES_ABOVE), i + 1)
      .map((above) => /^const (\w+) = prepareQuery\(/.exec(above)?.[1])
      .findLast((name) => name !== undefined);
    const calls = prepared === undefined ? [] : lines.flatMap((other, j) => (other.includes(`${prepared}(`) && !other.startsWith('const ') ? [j] : []));
    if (calls.length === 0 || !calls.every(noticed)) missing.push(i + 1);
  });
  return missing;
}

describe('writes of tenant rows', () => {
  it('finds a write that gives no notice, and accepts one that does', () => {
    expect(writesWithoutNotice("async function f(trx) {\n  await trx.updateTable('tenants').set(x).execute();\n}")).toEqual([2]);
    expect(writesWithoutNotice('await sql`UPDATE tenants SET usage_vms = 1`.execute(db);')).toEqual([1]);
    expect(writesWithoutNotice("async function f(trx, id) {\n  tenantRowWritten(id);\n  await trx\n    .updateTable('tenants')\n}")).toEqual([]);
    const prepared = "const bump = prepareQuery((db: Db, id: string) =>\n  db\n    .updateTable('tenants')\n);\n";
    expect(writesWithoutNotice(`${prepared}async function g(trx, id) {\n  tenantRowWritten(id);\n  await bump(trx, id);\n}`)).toEqual([]);
    expect(writesWithoutNotice(`${prepared}async function g(trx, id) {\n  await bump(trx, id);\n}`)).toEqual([3]);
    expect(writesWithoutNotice(prepared)).toEqual([3]);
  });

  it('every statement in src/ that writes the tenants table calls tenantRowWritten first', () => {
    const found: string[] = [];
    let writes = 0;
    for (const path of sourceFiles('src')) {
      if (relative('src', path) === join('store', 'migrations.ts')) continue;
      const text = readFileSync(path, 'utf8');
      writes += text.split('\n').filter((line) => WRITE.test(line)).length;
      for (const line of writesWithoutNotice(text)) found.push(`${path}:${line}`);
    }
    expect(found).toEqual([]);
    // The five known today (insert and update of a tenant, two VM-change updates, a node change): a
    // pattern that stopped matching them would pass vacuously.
    expect(writes).toBeGreaterThanOrEqual(5);
  });
});
