/**
 * src/control: the operations that change state. Each runs in one store transaction together with
 * the ledger entry that records it (SPEC §8), and raises PpnErrors for the API to map. Nothing here
 * knows HTTP; routes call these functions and never build SQL themselves.
 */
import type { Clock, IdSource } from '../clock.js';
import { isoTime } from '../clock.js';
import type { Actor, EntryDraft } from '../ledger/entry.js';
import type { Db } from '../store/schema.js';
import { appendEntry } from '../store/ledger.js';
import type { Store } from '../store/store.js';

export interface ControlDeps {
  store: Store;
  clock: Clock;
  ids: IdSource;
}

/** Who asked for a change, as the ledger records it. */
export interface Origin {
  actor: Actor;
  requestId: string | null;
}

/** Appends the entry for a change in `trx`, filling in the origin and the clock's time. */
export function recordEvent(deps: ControlDeps, trx: Db, origin: Origin, event: Pick<EntryDraft, 'event_type' | 'tenant_id' | 'subject_ids' | 'data'>): Promise<number> {
  return appendEntry(trx, deps.store.dialect, { ...event, actor: origin.actor, request_id: origin.requestId }, () => isoTime(deps.clock.now()));
}

/** A token's name as its ledger entries record it: `{name}` when it has one, nothing otherwise. */
export function nameData(name: string | null | undefined): { name?: string } {
  return name !== null && name !== undefined ? { name } : {};
}
