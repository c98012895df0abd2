/**
 * Accepting a rollback (SPEC §8): an older copy of the database restored on purpose is refused like
 * an attacker's rollback until the operator accepts it. Accepting records LEDGER_ROLLED_BACK with
 * the checkpoint the server remembered and the ledger it found, then signs a checkpoint over the new
 * history. Other replicas that remembered the same checkpoint accept the database on the strength of
 * that signed entry (src/control/ledger-check.ts); a database writer without the ledger key cannot
 * make one.
 */
import type { SignedTreeHead, TreeHead } from '../ledger/checkpoint.js';
import { LOCAL_OPERATOR } from '../ledger/entry.js';
import { inTransaction } from '../store/store.js';
import { LedgerProblemError, signPendingCheckpoint, type LedgerSigner } from './checkpoints.js';
import { recordEvent, type ControlDeps } from './context.js';

export interface Rollback {
  /** The checkpoint the server remembered. */
  from: TreeHead;
  /** The stored ledger, checked: its size and root. */
  to: TreeHead;
}

/**
 * Appends LEDGER_ROLLED_BACK at index `to.size` and signs the checkpoint that covers it; returns the
 * checkpoint, for ledger.state. Fails, changing nothing, if another writer appended meanwhile.
 */
export async function recordRollback(deps: ControlDeps, signer: LedgerSigner, rollback: Rollback): Promise<SignedTreeHead> {
  const { from, to } = rollback;
  await inTransaction(deps.store, async (trx) => {
    const index = await recordEvent(
      deps,
      trx,
      { actor: LOCAL_OPERATOR, requestId: null },
      {
        event_type: 'LEDGER_ROLLED_BACK',
        tenant_id: null,
        subject_ids: {},
        data: { from_size: from.size, from_root: from.root.toString('hex'), to_size: to.size, to_root: to.root.toString('hex') },
      },
    );
    if (index !== to.size)
      throw new Error(
        `another writer appended to the ledger meanwhile (the entry would be ${index}, not ${to.size}): stop every server using the database and run this again`,
      );
  });
  const signed = await signPendingCheckpoint(deps.store, signer, deps.clock, to);
  if (!signed) throw new LedgerProblemError({ index: to.size, what: 'no checkpoint could be signed over the LEDGER_ROLLED_BACK entry' });
  return signed;
}
