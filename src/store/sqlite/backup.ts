/**
 * An online copy of the embedded store while the server writes to it, with SQLite's backup API
 * through a read-only connection of its own: the server's data-directory lock is not taken, and in
 * WAL mode the copy's read transaction blocks no writer. SQLite restarts a copy made in several steps
 * when another connection writes between two steps, so under a steady write load the copy falls back
 * to one step: a single read transaction, hence one consistent snapshot, whatever the load.
 */
import BetterSqlite3 from 'better-sqlite3';

export interface CopyProgress {
  copied: number;
  total: number;
  /** Set once a write between steps restarted the copy and the rest goes in one step. */
  restarted: boolean;
}

/** Pages per step: about twenty steps for a large file, so progress shows; never fewer than this. */
const MIN_STEP_PAGES = 1024;
/** The most better-sqlite3 passes to sqlite3_backup_step: more than any file holds. */
const ALL_PAGES = 0x7fffffff;

/** Copies the database `source` into the new file `destination`; returns the pages copied. */
export async function copySqliteOnline(source: string, destination: string, progress?: (p: CopyProgress) => void): Promise<number> {
  const db = new BetterSqlite3(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    let lastRemaining = Infinity;
    let restarted = false;
    const result = await db.backup(destination, {
      progress: ({ totalPages, remainingPages }) => {
        // A restarted step copies the first pages again: no fewer remain than before it.
        if (remainingPages >= lastRemaining) restarted = true;
        lastRemaining = remainingPages;
        progress?.({ copied: totalPages - remainingPages, total: totalPages, restarted });
        // All pages, counted when the step begins: the file may have grown since this count.
        return restarted ? ALL_PAGES : Math.max(MIN_STEP_PAGES, Math.ceil(totalPages / 20));
      },
    });
    return result.totalPages;
  } finally {
    db.close();
  }
}
