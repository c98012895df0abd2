/**
 * Integration and signing: background work on the elected server (SPEC §8). Requests only sequence
 * entries; `integratePending` adds them to the stored Merkle tree in batches. When the tree has grown
 * past the latest checkpoint, the signer checks what was added since the last tree head this server
 * verified (src/control/ledger-check.ts#checkExtension: O(new entries + log n)), and only then signs
 * a C2SP checkpoint of the recomputed root with the ledger key (separate from the token keys) and
 * keeps it. It never signs over entries it has not checked: on PostgreSQL other replicas, or anyone
 * who can write the database, append entries too.
 */
import type { KeyObject } from 'node:crypto';
import { isoTime, type Clock } from '../clock.js';
import { formatCheckpoint, type SignedTreeHead, type TreeHead } from '../ledger/checkpoint.js';
import { EMPTY_ROOT } from '../ledger/merkle.js';
import { signNote } from '../ledger/note.js';
import { insertCheckpoint, latestCheckpoint, type StoredCheckpoint } from '../store/checkpoints.js';
import { integrateEntries, MissingNodeError, storedTreeSize } from '../store/ledger-tree.js';
import type { Store } from '../store/store.js';
import { checkExtension, type LedgerProblem } from './ledger-check.js';

export interface LedgerSigner {
  /** The log's origin line, also the signing key's name. */
  origin: string;
  key: KeyObject;
}

/** The head of the empty tree: checking from it checks every entry. */
export const EMPTY_HEAD: TreeHead = { size: 0, root: EMPTY_ROOT };

/** Thrown by the signer when the stored ledger does not extend what it verified before. */
export class LedgerProblemError extends Error {
  constructor(readonly problem: LedgerProblem) {
    super(`the ledger failed verification at index ${problem.index}: ${problem.what}`);
  }
}

/**
 * Adds every entry sequenced so far to the stored tree; returns how many. A tree whose right edge is
 * gone cannot be extended: that is a problem of the ledger, at the first entry under the lost node.
 */
export async function integratePending(store: Store): Promise<number> {
  try {
    return await integrateEntries(store);
  } catch (error) {
    if (!(error instanceof MissingNodeError)) throw error;
    const first = error.index * 2 ** error.level;
    throw new LedgerProblemError({ index: first, what: `${error.message}, so the entries after it cannot join the tree` });
  }
}

/**
 * Integrates what is sequenced, then signs a checkpoint if there are entries no checkpoint covers
 * yet (see signCheckpoint).
 */
export async function signPendingCheckpoint(
  store: Store,
  signer: LedgerSigner,
  clock: Clock,
  verified: TreeHead = EMPTY_HEAD,
): Promise<(StoredCheckpoint & SignedTreeHead) | null> {
  await integratePending(store);
  return signCheckpoint(store, signer, clock, verified);
}

/**
 * Signs a checkpoint over the stored tree if it has entries no checkpoint covers yet, after checking
 * that it extends `verified` (the latest tree head this server checked); returns it with its tree
 * head, which the caller keeps as the new `verified`, or null when there is nothing to sign. It
 * integrates nothing: the integrator calls it right after its own integration turn.
 */
export async function signCheckpoint(
  store: Store,
  signer: LedgerSigner,
  clock: Clock,
  verified: TreeHead = EMPTY_HEAD,
): Promise<(StoredCheckpoint & SignedTreeHead) | null> {
  const size = await storedTreeSize(store.db);
  if (size < verified.size) {
    throw new LedgerProblemError({ index: size, what: `the tree has ${size} leaves, fewer than the ${verified.size} this server verified: the ledger was rolled back` });
  }
  const latest = await latestCheckpoint(store.db);
  if (size === 0 || (latest && latest.size >= size)) return null;
  const { head, problem } = await checkExtension(store, verified, size);
  if (problem) throw new LedgerProblemError(problem);
  const note = signNote(formatCheckpoint({ origin: signer.origin, size, root: head.root }), signer.origin, signer.key);
  const checkpoint = { size, note, created_at: isoTime(clock.now()) };
  await insertCheckpoint(store.db, checkpoint);
  return { ...checkpoint, root: head.root };
}
