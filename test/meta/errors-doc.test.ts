/** docs/errors.md documents exactly the closed set of error codes, with the statuses the API uses. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { problemKind } from '../../src/api/problem.js';
import { ERROR_CODES } from '../../src/errors.js';
import { SIGNATURE_ERROR_CODES } from '../../src/httpsig/error.js';

const rows = readFileSync('docs/errors.md', 'utf8')
  .split('\n')
  .map((line) => /^\| `([a-z_]+)` \| (\d{3}) \| `([^`]+)` \|/.exec(line))
  .filter((m): m is RegExpExecArray => m !== null);

describe('docs/errors.md', () => {
  it('lists every error code once, and no other', () => {
    expect(rows.map((m) => m[1]).sort()).toEqual([...ERROR_CODES].sort());
  });

  it.each(rows.map((m) => [m[1]!, Number(m[2]), m[3]!]))('gives %s the status and type the API sends', (code, status, type) => {
    const kind = problemKind(code as (typeof ERROR_CODES)[number]);
    expect(kind.status).toBe(status);
    expect(kind.type).toBe(type);
  });
});

describe('docs/errors.md, signature_error', () => {
  it('lists every request-signature error code once, and no other', () => {
    const doc = readFileSync('docs/errors.md', 'utf8');
    const section = doc.slice(doc.indexOf('## `signature_error`'));
    const codes = section
      .split('\n')
      .map((line) => /^\| `([a-z_]+)` \| [^|]+ \|$/.exec(line)?.[1])
      .filter((code): code is string => code !== undefined);
    expect(codes.sort()).toEqual([...SIGNATURE_ERROR_CODES].sort());
  });
});
