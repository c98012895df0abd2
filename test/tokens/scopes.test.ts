/** The closed set of scopes and what each implies (SPEC §5, the scope table). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isScope, SCOPES, scopesAllow, scopesWithin, type Scope } from '../../src/tokens/scopes.js';

// The SPEC §5 table, written out: each scope and every scope it implies (itself included).
const IMPLIED: Record<Scope, Scope[]> = {
  'service:platform-admin': ['service:platform-admin', 'service:tenant-admin', 'tenant:input', 'tenant:user', 'tenant:read', 'node:agent'],
  'service:tenant-admin': ['service:tenant-admin', 'tenant:input', 'tenant:user', 'tenant:read', 'node:agent'],
  'tenant:input': ['tenant:input', 'tenant:user', 'tenant:read'],
  'tenant:user': ['tenant:user', 'tenant:read'],
  'tenant:read': ['tenant:read'],
  'node:agent': ['node:agent'],
};

describe('the scope set', () => {
  it('is exactly the six scopes of SPEC §5', () => {
    expect([...SCOPES].sort()).toEqual(Object.keys(IMPLIED).sort());
  });

  it('isScope accepts each scope and refuses near misses and non-strings', () => {
    for (const scope of SCOPES) expect(isScope(scope)).toBe(true);
    for (const value of ['', 'tenant:admin', 'Tenant:read', 'tenant:read ', 'service:*', null, undefined, 1, ['tenant:read'], {}]) {
      expect(isScope(value)).toBe(false);
    }
  });
});

describe('scopesAllow follows the implication table', () => {
  for (const held of SCOPES) {
    for (const wanted of SCOPES) {
      const allowed = IMPLIED[held].includes(wanted);
      it(`${held} ${allowed ? 'implies' : 'does not imply'} ${wanted}`, () => {
        expect(scopesAllow([held], wanted)).toBe(allowed);
      });
    }
  }

  it('an empty list of held scopes allows nothing', () => {
    for (const wanted of SCOPES) expect(scopesAllow([], wanted)).toBe(false);
  });

  it('a list allows what any one of its scopes allows', () => {
    expect(scopesAllow(['tenant:read', 'node:agent'], 'node:agent')).toBe(true);
    expect(scopesAllow(['tenant:read', 'node:agent'], 'tenant:read')).toBe(true);
    expect(scopesAllow(['tenant:read', 'node:agent'], 'tenant:user')).toBe(false);
  });
});

describe('scopesWithin', () => {
  it.each<[Scope[], Scope[], boolean]>([
    [['tenant:read'], ['tenant:read'], true],
    [['tenant:read'], ['tenant:input'], true],
    [['tenant:user', 'tenant:read'], ['tenant:input'], true],
    [['tenant:input', 'node:agent'], ['service:tenant-admin'], true],
    [['service:tenant-admin'], ['service:platform-admin'], true],
    [[...SCOPES], ['service:platform-admin'], true],
    [['tenant:user'], ['tenant:read'], false],
    [['tenant:input'], ['tenant:user'], false],
    [['service:tenant-admin'], ['tenant:input'], false],
    [['service:platform-admin'], ['service:tenant-admin'], false],
    [['node:agent'], ['tenant:input'], false],
    [['tenant:read'], ['node:agent'], false],
    [['tenant:read', 'node:agent'], ['tenant:input'], false],
    [['tenant:read', 'node:agent'], ['tenant:read', 'node:agent'], true],
  ])('%j within %j is %s', (narrower, wider, expected) => {
    expect(scopesWithin(narrower, wider)).toBe(expected);
  });

  it('holds exactly when every narrower scope is implied by some wider scope (checked against the table)', () => {
    const scopeList = fc.subarray([...SCOPES]);
    fc.assert(
      fc.property(scopeList, scopeList, (narrower, wider) => {
        const expected = narrower.every((s) => wider.some((w) => IMPLIED[w].includes(s)));
        expect(scopesWithin(narrower, wider)).toBe(expected);
      }),
    );
  });

  it('is reflexive and transitive, so a chain of narrowings never widens', () => {
    const scopeList = fc.subarray([...SCOPES], { minLength: 1 });
    fc.assert(
      fc.property(scopeList, scopeList, scopeList, (a, b, c) => {
        expect(scopesWithin(a, a)).toBe(true);
        if (scopesWithin(a, b) && scopesWithin(b, c)) expect(scopesWithin(a, c)).toBe(true);
      }),
    );
  });
});
