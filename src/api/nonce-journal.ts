/**
 * The SQLite server's accepted nonces, kept across restarts (SPEC §5: a nonce is accepted once
 * within the window, a restart included). The record itself is a map in memory (nonce-record.ts);
 * this journal is what a new process reads back.
 *
 * Each accepted nonce is appended to the journal before its request goes on: one write(2), in the
 * page cache at once, so a process that is killed loses none. The file is synced to disk within
 * SYNC_MS, so a machine that loses power loses at most that last moment's nonces.
 *
 * The journal is a directory of files named by period (`<period>.log`, a period being PERIOD_MS of
 * the clock). A nonce lives at most MAX_LIFETIME_MS past its acceptance, which is less than a
 * period, so once period k begins every entry of period k−2 or earlier has expired: those files are
 * deleted whole, and nothing is ever rewritten.
 *
 * A line is `[expiresAtMs, keyid, nonce]` in JSON. A line that does not parse (the torn end of a
 * write cut short by a crash) is skipped.
 */
import { close, closeSync, existsSync, fdatasync, fdatasyncSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SIGNATURE_WINDOW_SECONDS } from '../httpsig/verify.js';

/**
 * The longest a nonce is remembered past its acceptance: `created` may be up to the window ahead of
 * the clock, and the nonce is kept until the window past `created`.
 */
export const MAX_LIFETIME_MS = 2 * SIGNATURE_WINDOW_SECONDS * 1000;
/** Twice the longest lifetime, so a period's file outlives every entry in it by at least a period. */
export const PERIOD_MS = 2 * MAX_LIFETIME_MS;
export const SYNC_MS = 1000;

const FILE_NAME = /^(\d{1,15})\.log$/;

export interface JournalEntry {
  keyid: string;
  nonce: string;
  expiresAt: number;
}

export class NonceJournal {
  private fd: number | null = null;
  private period = -1;
  private dirty = false;
  /**
   * Written before the next line: a newline at the start of each file opened (its last line may be
   * the torn end of a write a crash cut short) and after a short write, so no line is glued to one.
   */
  private separator = '';
  private syncTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly dir: string) {}

  /**
   * Opens the journal in `dir` (created 0700 if missing) and returns it with the entries still live
   * at `now`, oldest file first. Files whose period ended at least a period before `now` are deleted.
   */
  static open(dir: string, now: number): { journal: NonceJournal; live: JournalEntry[] } {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const current = Math.floor(now / PERIOD_MS);
    const live: JournalEntry[] = [];
    for (const period of periodsIn(dir)) {
      if (period <= current - 2) continue;
      for (const entry of parseJournal(readFileSync(join(dir, `${period}.log`), 'utf8'))) {
        if (entry.expiresAt > now) live.push(entry);
      }
    }
    removeExpired(dir, current);
    return { journal: new NonceJournal(dir), live };
  }

  /** Appends an accepted nonce; throws when it cannot be written (the caller must then refuse the request). */
  append(entry: JournalEntry, now: number): void {
    const period = Math.floor(now / PERIOD_MS);
    // A clock stepped back keeps writing to the latest period's file: nothing live is ever deleted.
    if (this.fd === null || period > this.period) this.startPeriod(Math.max(period, this.period));
    const line = `${this.separator}${JSON.stringify([entry.expiresAt, entry.keyid, entry.nonce])}\n`;
    this.separator = '\n';
    this.dirty = true;
    const bytes = Buffer.from(line);
    if (writeSync(this.fd!, bytes) !== bytes.length) throw new Error('a short write to the nonce journal');
    this.separator = '';
    this.syncTimer ??= setTimeout(() => this.sync(), SYNC_MS).unref();
  }

  /** Syncs what was written and closes the file. */
  close(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    if (this.fd === null) return;
    fdatasyncSync(this.fd);
    closeSync(this.fd);
    this.fd = null;
  }

  private startPeriod(period: number): void {
    // The new file first: if it cannot be opened, the old one stays in use and nothing is lost.
    const fd = openSync(join(this.dir, `${period}.log`), 'a', 0o600);
    const previous = this.fd;
    if (previous !== null) {
      // The old file's last lines reach the disk before it is closed, off the event loop.
      const closeIt = () => close(previous, () => {});
      if (this.dirty) fdatasync(previous, closeIt);
      else closeIt();
    }
    this.fd = fd;
    this.period = period;
    this.dirty = false;
    this.separator = '\n';
    removeExpired(this.dir, period);
  }

  private sync(): void {
    this.syncTimer = null;
    if (this.fd === null || !this.dirty) return;
    this.dirty = false;
    // A failed sync leaves the lines in the page cache, where a killed process does not lose them.
    fdatasync(this.fd, () => {});
  }
}

/**
 * Deletes the files of periods that ended at least a period before `current` began: every entry in
 * them has expired. One that cannot be deleted is left; its entries, expired, are never loaded.
 */
function removeExpired(dir: string, current: number): void {
  for (const period of periodsIn(dir)) {
    if (period > current - 2) continue;
    try {
      unlinkSync(join(dir, `${period}.log`));
    } catch {
      // Left for the next period's attempt.
    }
  }
}

/** The periods of the journal files in `dir`, oldest first. */
function periodsIn(dir: string): number[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((name) => FILE_NAME.exec(name))
    .filter((match) => match !== null)
    .map((match) => Number(match[1]))
    .sort((a, b) => a - b);
}

/** The well-formed entries of a journal file's text; anything else (a torn last line) is skipped. */
export function parseJournal(text: string): JournalEntry[] {
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue;
    }
    if (!Array.isArray(value) || value.length !== 3) continue;
    const [expiresAt, keyid, nonce] = value as unknown[];
    if (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || typeof keyid !== 'string' || typeof nonce !== 'string') continue;
    entries.push({ keyid, nonce, expiresAt });
  }
  return entries;
}
