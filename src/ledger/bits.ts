/**
 * Bit arithmetic on tree sizes and indexes, exact for every safe integer (up to 2^53 − 1).
 * JavaScript's bitwise operators work on 32 bits, and Math.log2 rounds: Math.log2(2^49 + 1) is
 * exactly 49, so "is a power of two" can never be asked of a logarithm. Here a number is split into
 * its two 32-bit halves (both exact) and each half is tested with integer operations.
 */

const TWO_32 = 2 ** 32;

function halves(n: number): [high: number, low: number] {
  return [Math.floor(n / TWO_32), n % TWO_32];
}

/** Whether the safe integer n ≥ 1 has exactly one bit set. */
export function isPowerOfTwo(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 1) return false;
  const [high, low] = halves(n);
  // `x & (x - 1)` clears the lowest set bit; ToInt32 keeps all 32 bits of a half, so it is exact.
  return high === 0 ? (low & (low - 1)) === 0 : low === 0 && (high & (high - 1)) === 0;
}

/** The exponent of a power of two n (n = 2^k gives k); a RangeError for anything else. */
export function exponentOf(n: number): number {
  if (!isPowerOfTwo(n)) throw new RangeError(`${n} is not a power of two`);
  const [high, low] = halves(n);
  return high === 0 ? 31 - Math.clz32(low) : 63 - Math.clz32(high);
}

/** The largest power of two smaller than n (n ≥ 2): where RFC 6962 §2.1 splits a tree of n leaves. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
