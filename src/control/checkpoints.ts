/**
 * The checkpoint signer: background work on the elected server (SPEC §8). When the stored tree has
 * grown past the latest checkpoint, it signs a C2SP checkpoint of the current size with the ledger
 * key (separate from the token keys) and keeps it.
 */
import type { KeyObject } from 'node:crypto';
import { isoTime, type Clock } from '../clock.js';
import { formatCheckpoint } from '../ledger/checkpoint.js';
import { signNote } from '../ledger/note.js';
import { insertCheckpoint, latestCheckpoint, type StoredCheckpoint } from '../store/checkpoints.js';
import { readRoot, storedTreeSize } from '../store/ledger-tree.js';
import type { Store } from '../store/store.js';

export interface LedgerSigner {
  /** The log's origin line, also the signing key's name. */
  origin: string;
  key: KeyObject;
}

/** Signs a checkpoint if there are entries no checkpoint covers yet; returns it, or null. */
export async function signPendingCheckpoint(store: Store, signer: LedgerSigner, clock: Clock): Promise<StoredCheckpoint | null> {
  const size = await storedTreeSize(store.db);
  const latest = await latestCheckpoint(store.db);
  if (size === 0 || (latest && latest.size >= size)) return null;
  const root = await readRoot(store.db, size);
  const note = signNote(formatCheckpoint({ origin: signer.origin, size, root }), signer.origin, signer.key);
  const checkpoint = { size, note, created_at: isoTime(clock.now()) };
  await insertCheckpoint(store.db, checkpoint);
  return checkpoint;
}
