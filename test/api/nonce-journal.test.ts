/**
 * The SQLite server's nonce journal (src/api/nonce-journal.ts): what a restarted server reads back is
 * exactly the nonces still live, whatever happened to the clock and the files in between. Real files
 * in a temporary directory; a restart is a new record opened on the same directory.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { MAX_LIFETIME_MS, PERIOD_MS, parseJournal } from '../../src/api/nonce-journal.js';
import { MemoryNonceRecord } from '../../src/api/nonce-record.js';
import { PpnError } from '../../src/errors.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function journalDir(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'ppn-nonces-')), 'nonces');
  dirs.push(dir);
  return dir;
}

/** A clock at the start of a period, so a test knows where the period boundaries fall. */
function clockAtPeriodStart(period = 7_000_000): ManualClock {
  return new ManualClock(period * PERIOD_MS);
}

describe('the nonce journal', () => {
  it('a restart refuses the nonces accepted before it while they live, and admits them again once expired', () => {
    const dir = journalDir();
    const clock = clockAtPeriodStart();
    const first = new MemoryNonceRecord(clock, dir);
    expect(first.accept('key-a', 'n1', clock.now() + 60_000)).toBe(true);
    expect(first.accept('key-a', 'n2', clock.now() + 1_000)).toBe(true);
    expect(first.accept('key-b', 'n1', clock.now() + 60_000)).toBe(true);
    first.close();

    clock.advance(2_000);
    const second = new MemoryNonceRecord(clock, dir);
    expect(second.accept('key-a', 'n1', clock.now() + 60_000)).toBe(false);
    expect(second.accept('key-b', 'n1', clock.now() + 60_000)).toBe(false);
    // n2 expired before the restart: a new signature may use it.
    expect(second.accept('key-a', 'n2', clock.now() + 60_000)).toBe(true);
    // A nonce is the key's own: another key's n1 is a different entry.
    expect(second.accept('key-c', 'n1', clock.now() + 60_000)).toBe(true);

    clock.advance(60_000);
    expect(second.accept('key-a', 'n1', clock.now() + 60_000)).toBe(true);
    second.close();
  });

  it('a record never closed (the process killed) is read back all the same', () => {
    const dir = journalDir();
    const clock = clockAtPeriodStart();
    const killed = new MemoryNonceRecord(clock, dir);
    expect(killed.accept('key', 'spent', clock.now() + 60_000)).toBe(true);
    // No close(): the line went to the file with its write, before the request went on.
    const restarted = new MemoryNonceRecord(clock, dir);
    expect(restarted.accept('key', 'spent', clock.now() + 60_000)).toBe(false);
    restarted.close();
    killed.close();
  });

  it('keeps the directory 0700 and its files 0600', () => {
    const dir = journalDir();
    const clock = clockAtPeriodStart();
    const record = new MemoryNonceRecord(clock, dir);
    record.accept('key', 'n', clock.now() + 60_000);
    record.close();
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(dir)) expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
  });

  it('deletes a period file once every entry in it has expired, and keeps the one before the current period', () => {
    const dir = journalDir();
    const clock = clockAtPeriodStart(100);
    const record = new MemoryNonceRecord(clock, dir);
    // At the very end of period 100, living on into period 101.
    clock.advance(PERIOD_MS - 1);
    expect(record.accept('key', 'late', clock.now() + MAX_LIFETIME_MS)).toBe(true);
    clock.advance(1);
    expect(record.accept('key', 'next', clock.now() + MAX_LIFETIME_MS)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['100.log', '101.log']);
    record.close();

    // Restarted in period 101: 'late' is still live, and read back from 100.log.
    const restarted = new MemoryNonceRecord(clock, dir);
    expect(restarted.accept('key', 'late', clock.now() + MAX_LIFETIME_MS)).toBe(false);
    // Into period 102: 100.log holds nothing live any more, and goes.
    clock.advance(PERIOD_MS);
    expect(restarted.accept('key', 'in-102', clock.now() + 1_000)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['101.log', '102.log']);
    restarted.close();
  });

  it('a clock stepped back deletes nothing and keeps refusing what it accepted', () => {
    const dir = journalDir();
    const clock = clockAtPeriodStart(200);
    const record = new MemoryNonceRecord(clock, dir);
    expect(record.accept('key', 'a', clock.now() + 60_000)).toBe(true);
    clock.advance(-3 * PERIOD_MS);
    expect(record.accept('key', 'b', clock.now() + 60_000)).toBe(true);
    record.close();
    expect(readdirSync(dir)).toEqual(['200.log']);
    const restarted = new MemoryNonceRecord(clock, dir);
    expect(restarted.accept('key', 'a', clock.now() + 60_000)).toBe(false);
    expect(restarted.accept('key', 'b', clock.now() + 60_000)).toBe(false);
    restarted.close();
  });

  it('reads past a torn last line and skips every malformed line, field by field', () => {
    const dir = journalDir();
    const clock = clockAtPeriodStart(300);
    const later = clock.now() + 60_000;
    mkdirSync(dir, { recursive: true });
    const lines = [
      JSON.stringify([later, 'key', 'good']),
      '', // an empty line
      'not json',
      JSON.stringify({ expiresAt: later, keyid: 'key', nonce: 'object' }),
      JSON.stringify([later, 'key']), // too short
      JSON.stringify([later, 'key', 'too', 'long']),
      JSON.stringify([String(later), 'key', 'expiry-a-string']),
      JSON.stringify([later + 0.5, 'key', 'expiry-not-integer']),
      JSON.stringify([1e300, 'key', 'expiry-unsafe']),
      JSON.stringify([later, 42, 'keyid-a-number']),
      JSON.stringify([later, 'key', null]),
      JSON.stringify([later, 'key', 'with spaces and "quotes"']),
    ];
    writeFileSync(join(dir, '300.log'), `${lines.join('\n')}\n`);
    // A write cut short by the crash: no newline, not JSON.
    appendFileSync(join(dir, '300.log'), `[${later},"key","torn`);
    expect(parseJournal(readFileSync(join(dir, '300.log'), 'utf8')).map((entry) => entry.nonce)).toEqual(['good', 'with spaces and "quotes"']);

    const record = new MemoryNonceRecord(clock, dir);
    expect(record.accept('key', 'good', later)).toBe(false);
    expect(record.accept('key', 'with spaces and "quotes"', later)).toBe(false);
    // Malformed lines are not nonces: each is admitted as new.
    const admitted = ['object', 'expiry-a-string', 'expiry-not-integer', 'keyid-a-number', 'torn'];
    for (const nonce of admitted) expect(record.accept('key', nonce, later)).toBe(true);
    record.close();
    // Each was journalled on a line of its own, the first not glued to the torn one.
    const again = new MemoryNonceRecord(clock, dir);
    for (const nonce of admitted) expect(again.accept('key', nonce, later)).toBe(false);
    again.close();
  });

  it('refuses a nonce it cannot write (store_unavailable), and records nothing for it', () => {
    const dir = journalDir();
    const clock = clockAtPeriodStart(400);
    const heard: Error[] = [];
    const record = new MemoryNonceRecord(clock, dir, (error) => heard.push(error));
    expect(record.accept('key', 'first', clock.now() + 60_000)).toBe(true);
    // The next period's file cannot be created: a directory stands in its place.
    mkdirSync(join(dir, '401.log'));
    clock.advance(PERIOD_MS);
    let refused: unknown;
    try {
      record.accept('key', 'unwritten', clock.now() + 60_000);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(PpnError);
    expect((refused as PpnError).code).toBe('store_unavailable');
    // The caller is told no more; the operator's log hears why.
    expect((refused as PpnError).message).not.toContain(dir);
    expect(heard.map((error) => (error as NodeJS.ErrnoException).code)).toEqual(['EISDIR']);
    rmSync(join(dir, '401.log'), { recursive: true });
    // Nothing was recorded for it: the same nonce is admitted once the journal can be written.
    expect(record.accept('key', 'unwritten', clock.now() + 60_000)).toBe(true);
    expect(record.accept('key', 'unwritten', clock.now() + 60_000)).toBe(false);
    record.close();
  });

  it('property: across restarts and clock moves, the record answers exactly as a map of every nonce ever accepted would', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('accept' as const), nonce: fc.integer({ min: 0, max: 7 }), lifetime: fc.integer({ min: 1, max: MAX_LIFETIME_MS }) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 30_000 }), fc.integer({ min: 0, max: 2 * PERIOD_MS })) }),
      fc.record({ kind: fc.constant('restart' as const), clean: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
        const dir = journalDir();
        // A minute before a period ends, so that runs cross the boundaries that matter.
        const clock = clockAtPeriodStart(500);
        clock.advance(PERIOD_MS - 60_000);
        const model = new Map<string, number>();
        let record = new MemoryNonceRecord(clock, dir);
        const open: MemoryNonceRecord[] = [record];
        for (const step of ops) {
          if (step.kind === 'advance') clock.advance(step.ms);
          else if (step.kind === 'restart') {
            if (step.clean) record.close();
            record = new MemoryNonceRecord(clock, dir);
            open.push(record);
          } else {
            const key = `n${step.nonce}`;
            const seen = model.get(key);
            const expected = seen === undefined || seen <= clock.now();
            if (expected) model.set(key, clock.now() + step.lifetime);
            expect(record.accept('key', key, clock.now() + step.lifetime)).toBe(expected);
          }
        }
        for (const each of open) each.close();
      }),
      { numRuns: 300 },
    );
  });
});
