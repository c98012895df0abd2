/**
 * An exclusive lock on a file that the kernel drops when the holding process dies, however it dies,
 * and that a copy of the file does not carry (docs/decisions/0008-data-directory-lock.md). Node has
 * no flock(2); SQLite's POSIX advisory locks give the same through better-sqlite3. The lock file is a
 * small SQLite database with one row naming its holder. The holder keeps a write transaction open (a
 * RESERVED lock) for its whole life: no other process can begin one, yet any process can still read
 * the row, so the one refused can say who holds the lock.
 */
import { chmodSync, closeSync, openSync } from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';

export interface LockHolder {
  pid: number;
  host: string;
  /** When the holder took the lock, RFC 3339. */
  started: string;
}

export class LockHeldError extends Error {
  constructor(
    readonly file: string,
    /** Undefined when the holder has not named itself yet (it is between taking the lock and writing its row). */
    readonly holder: LockHolder | undefined,
  ) {
    super(`the lock on ${file} is held${holder ? ` by pid ${holder.pid} on ${holder.host}` : ''}`);
  }
}

/** How long the holder's commit of its row, or a refused process's read of it, may wait for the other. */
const ROW_BUSY_MS = 2000;

/** Takes the lock on `file` (created 0600) for `me`, or throws LockHeldError naming the holder. Returns the release function. */
export function acquireFileLock(file: string, me: LockHolder): () => void {
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  const db = new BetterSqlite3(file, { timeout: 0 });
  try {
    if (!tryBeginWrite(db)) throw heldBy(db, file);
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, host TEXT NOT NULL, started TEXT NOT NULL)');
    db.prepare('DELETE FROM holder').run();
    db.prepare('INSERT INTO holder (pid, host, started) VALUES (?, ?, ?)').run(me.pid, me.host, me.started);
    // Committing needs readers of the row to step aside for a moment.
    db.pragma(`busy_timeout = ${ROW_BUSY_MS}`);
    db.exec('COMMIT');
    db.pragma('busy_timeout = 0');
    // Another process may have taken the lock between the commit and here; then it has named itself.
    if (!tryBeginWrite(db)) throw heldBy(db, file);
  } catch (error) {
    db.close();
    throw error;
  }
  // Closing the connection ends the (empty) transaction and drops the lock.
  return () => {
    if (db.open) db.close();
  };
}

function tryBeginWrite(db: BetterSqlite3.Database): boolean {
  try {
    db.exec('BEGIN IMMEDIATE');
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return false;
    throw error;
  }
}

function heldBy(db: BetterSqlite3.Database, file: string): LockHeldError {
  db.pragma(`busy_timeout = ${ROW_BUSY_MS}`);
  let holder: LockHolder | undefined;
  try {
    holder = db.prepare('SELECT pid, host, started FROM holder').get() as LockHolder | undefined;
  } catch {
    // No row yet: the holder is still writing it.
  }
  return new LockHeldError(file, holder);
}
