/**
 * The platform key set's states (src/tokens/keyring.ts): a table of single transitions, and a
 * property over any sequence of rotations and retirements: exactly one key is active, it signs and
 * verifies, every key rotated away verifies until it is retired, a retired key never verifies again,
 * and the active key can never be retired.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, keyId, type KeyPair } from '../../src/tokens/keys.js';
import { applyRetirement, applyRotation, KeySetError, keyringFromKeySet, type KeySetErrorCode, type KeyStateRecord } from '../../src/tokens/keyring.js';

const POOL: KeyPair[] = Array.from({ length: 12 }, () => generateKeyPair());
const kidOf = (i: number) => keyId(POOL[i]!.publicKey);

function codeOf(work: () => unknown): KeySetErrorCode | 'none' {
  try {
    work();
    return 'none';
  } catch (error) {
    expect(error).toBeInstanceOf(KeySetError);
    return (error as KeySetError).code;
  }
}

function ringOf(records: readonly KeyStateRecord[]) {
  return keyringFromKeySet(records.map((r) => ({ ...r, privateKey: r.state === 'retired' ? null : POOL.find((k) => keyId(k.publicKey) === r.kid)!.privateKey })));
}

describe('key set transitions', () => {
  const start: KeyStateRecord[] = [
    { kid: kidOf(0), state: 'retired' },
    { kid: kidOf(1), state: 'verifying' },
    { kid: kidOf(2), state: 'active' },
  ];

  it.each<[string, () => KeyStateRecord[], KeyStateRecord[] | KeySetErrorCode]>([
    [
      'rotate: the new key is active, the old one verifies',
      () => applyRotation(start, kidOf(3)),
      [start[0]!, start[1]!, { kid: kidOf(2), state: 'verifying' }, { kid: kidOf(3), state: 'active' }],
    ],
    ['retire a verifying key', () => applyRetirement(start, kidOf(1)), [start[0]!, { kid: kidOf(1), state: 'retired' }, start[2]!]],
    ['retire a retired key: nothing changes', () => applyRetirement(start, kidOf(0)), start],
    ['retire the active key: refused', () => applyRetirement(start, kidOf(2)), 'active_key'],
    ['retire an unknown kid: refused', () => applyRetirement(start, 'no-such-kid'), 'unknown_kid'],
  ])('%s', (_, change, expected) => {
    if (typeof expected === 'string') expect(codeOf(change)).toBe(expected);
    else expect(change()).toEqual(expected);
  });

  it.each<[string, KeyStateRecord[], KeySetErrorCode]>([
    ['no active key', [{ kid: kidOf(0), state: 'verifying' }], 'no_active_key'],
    [
      'two active keys',
      [
        { kid: kidOf(0), state: 'active' },
        { kid: kidOf(1), state: 'active' },
      ],
      'active_key',
    ],
  ])('a stored set with %s is refused', (_, records, code) => {
    expect(codeOf(() => ringOf(records))).toBe(code);
  });

  it('a stored key whose private key is not the one its kid names is refused (kid_mismatch)', () => {
    const members = [{ kid: kidOf(0), state: 'active' as const, privateKey: POOL[1]!.privateKey }];
    expect(codeOf(() => keyringFromKeySet(members))).toBe('kid_mismatch');
  });
});

describe('key set states under any sequence of rotations and retirements', () => {
  type Op = { rotate: true } | { retire: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.constant({ rotate: true as const }),
    fc.nat({ max: 11 }).map((i) => ({ retire: i })),
  );

  it('keeps one active key; rotated-away keys verify until retired; retired keys never verify; the active key cannot be retired', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        let records: KeyStateRecord[] = [{ kid: kidOf(0), state: 'active' }];
        let next = 1;
        const retired = new Set<string>();
        for (const step of ops) {
          const before = ringOf(records);
          if ('rotate' in step) {
            if (next >= POOL.length) continue;
            records = applyRotation(records, kidOf(next++));
            const after = ringOf(records);
            expect(after.activeKid).toBe(kidOf(next - 1));
            expect(after.publicKey(before.activeKid)).toBeDefined();
          } else {
            const kid = kidOf(step.retire);
            const code = codeOf(() => (records = applyRetirement(records, kid)));
            if (kid === before.activeKid) expect(code).toBe('active_key');
            else if (step.retire >= next) expect(code).toBe('unknown_kid');
            else {
              expect(code).toBe('none');
              retired.add(kid);
            }
          }
          const ring = ringOf(records);
          expect(records.filter((r) => r.state === 'active')).toHaveLength(1);
          expect(ring.publicKey(ring.activeKid)).toBeDefined();
          expect(keyId(ring.publicKey(ring.activeKid)!)).toBe(ring.activeKid);
          for (let i = 0; i < next; i++) expect(ring.publicKey(kidOf(i)) !== undefined).toBe(!retired.has(kidOf(i)));
        }
      }),
      { numRuns: 60 },
    );
  });
});
