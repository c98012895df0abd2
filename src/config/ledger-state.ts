/**
 * <data-dir>/ledger.state: the latest checkpoint this server signed or verified (SPEC §8), kept
 * outside the database so that a database cut back to an earlier size, or stripped of its
 * checkpoints, is noticed at the next start (src/control/ledger-check.ts). JSON with the size, the
 * root in hex and the signed note, which is checked with the ledger key on every read: the file is
 * read from disk, so it is untrusted input like the database.
 */
import { closeSync, existsSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpoint, type SignedTreeHead } from '../ledger/checkpoint.js';
import { openNote, type VerifierKey } from '../ledger/note.js';

export function ledgerStateFile(dataDir: string): string {
  return join(dataDir, 'ledger.state');
}

/** The remembered checkpoint, or null when the directory has none. Throws when the file is not a checkpoint signed by `key`. */
export function readLedgerState(dataDir: string, key: VerifierKey): SignedTreeHead | null {
  const file = ledgerStateFile(dataDir);
  if (!existsSync(file)) return null;
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as { size?: unknown; root?: unknown; note?: unknown };
    if (typeof state.note !== 'string') throw new Error('it holds no checkpoint note');
    const checkpoint = parseCheckpoint(openNote(state.note, key));
    if (checkpoint.origin !== key.name) throw new Error(`its checkpoint's origin is "${checkpoint.origin}", not "${key.name}"`);
    if (state.size !== checkpoint.size || state.root !== checkpoint.root.toString('hex')) throw new Error('its size and root are not those of its checkpoint');
    return { size: checkpoint.size, root: checkpoint.root, note: state.note };
  } catch (error) {
    // Named without its path: the message reaches /readyz.
    throw new Error(`the data directory's ledger.state is not a checkpoint signed with the ledger key: ${(error as Error).message}`, { cause: error });
  }
}

/** The file's text for `checkpoint` (a backup carries it too). */
export function ledgerStateText(checkpoint: SignedTreeHead): string {
  return `${JSON.stringify({ size: checkpoint.size, root: checkpoint.root.toString('hex'), note: checkpoint.note })}\n`;
}

/**
 * Remembers `checkpoint`: written to a temporary file, flushed, and renamed over the old one, so a
 * crash leaves the old state or the new one, never a torn file. Mode 0600.
 */
export function writeLedgerState(dataDir: string, checkpoint: SignedTreeHead): void {
  const file = ledgerStateFile(dataDir);
  const temporary = `${file}.tmp`;
  const text = ledgerStateText(checkpoint);
  const fd = openSync(temporary, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, file);
}
