/**
 * Time and identifiers are injected so that tests control them: expiry and rate-limit tests advance
 * a clock instead of sleeping.
 */
import { randomBytes } from 'node:crypto';

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock a test moves by hand. */
export class ManualClock implements Clock {
  constructor(private ms: number = Date.parse('2026-01-01T00:00:00Z')) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

export type IdSource = (prefix: string) => string;

/**
 * ULID-shaped ids (48-bit millisecond time, 80 random bits, lowercase Crockford base32) behind a
 * prefix, so ids sort in creation order and pagination by id is creation order.
 */
export function makeIdSource(clock: Clock): IdSource {
  return (prefix) => {
    let time = clock.now();
    let head = '';
    for (let i = 0; i < 10; i++) {
      head = CROCKFORD[time % 32] + head;
      time = Math.floor(time / 32);
    }
    const rand = randomBytes(10);
    let tail = '';
    let acc = 0;
    let bits = 0;
    for (const byte of rand) {
      acc = (acc << 8) | byte;
      bits += 8;
      while (bits >= 5) {
        bits -= 5;
        tail += CROCKFORD[(acc >> bits) & 31];
      }
    }
    return `${prefix}-${head}${tail}`;
  };
}
