/**
 * The audit trail as the console shows it: each entry marked verified only when its inclusion proof
 * leads to the root of a checkpoint whose signature verifies with the ledger key this browser
 * pinned on first use. The entry shown is the one hashed (`leaf_input`), never the server's parsed
 * copy beside it.
 *
 * The browser also remembers the last checkpoint it trusted, and trusts a new one only when a
 * consistency proof shows it extends the remembered one: a server that rewrote or removed entries
 * the browser was once shown (a forked or rolled-back ledger) is caught on the next visit, even if
 * every entry verifies against the new checkpoint.
 */
import { callApi } from './api.js';
import {
  equalBytes,
  fromHex,
  toHex,
  hashLeaf,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  verifyConsistency,
  verifyInclusion,
  type Checkpoint,
  type VerifierKey,
} from './ledger.js';
import type { Session } from './session.js';

const PINNED_KEY_ITEM = 'ppn-console-ledger-key';
const SEEN_CHECKPOINT_ITEM = 'ppn-console-ledger-checkpoint';
/** Entries shown (and proven) at once, newest first: each costs one proof request. */
export const SHOWN_ENTRIES = 50;

export type EntryStatus = 'verified' | 'failed' | 'pending' | 'unchecked';

export interface AuditEntry {
  index: number;
  ts: string;
  eventType: string;
  tenantId: string | null;
  actor: string;
  subjects: string;
  status: EntryStatus;
}

export interface AuditFilters {
  event_type?: string;
  vm_id?: string;
  node_id?: string;
  token_id?: string;
  since?: string;
  until?: string;
}

/** How the key the server serves stands against the one pinned here. */
export type KeyTrust = { state: 'pinned-now'; key: VerifierKey } | { state: 'pinned'; key: VerifierKey } | { state: 'changed'; pinned: string; served: string };

export async function trustLedgerKey(session: Session): Promise<KeyTrust> {
  const served = ((await callApi<string>(session, 'GET', '/v1/ledger/key', undefined, 'text')).body ?? '').trim();
  const pinned = localStorage.getItem(PINNED_KEY_ITEM);
  if (pinned === null) {
    const key = await parseVerifierKey(served);
    localStorage.setItem(PINNED_KEY_ITEM, key.text);
    return { state: 'pinned-now', key };
  }
  if (pinned !== served) return { state: 'changed', pinned, served };
  return { state: 'pinned', key: await parseVerifierKey(pinned) };
}

/** After a warning the user read: pin the key the server serves now instead (another key, another ledger). */
export function forgetPinnedLedgerKey(): void {
  localStorage.removeItem(PINNED_KEY_ITEM);
  forgetSeenCheckpoint();
}

/** After a warning the user read (the operator restored the ledger from a backup): trust the next checkpoint afresh. */
export function forgetSeenCheckpoint(): void {
  localStorage.removeItem(SEEN_CHECKPOINT_ITEM);
}

/** The last checkpoint this browser trusted: its tree size, root and when it was first seen here. */
export interface SeenCheckpoint {
  /** The ledger key it was signed with. */
  key: string;
  size: number;
  root: string;
  seenAt: string;
}

/** How the checkpoint shown stands against the one this browser trusted before. */
export type History =
  { state: 'first' } | { state: 'extends'; seen: SeenCheckpoint } | { state: 'rewritten'; seen: SeenCheckpoint; why: 'smaller' | 'other-root' | 'bad-proof' };

function readSeenCheckpoint(key: VerifierKey): SeenCheckpoint | null {
  try {
    const seen = JSON.parse(localStorage.getItem(SEEN_CHECKPOINT_ITEM) ?? 'null') as SeenCheckpoint | null;
    const valid = seen !== null && seen.key === key.text && Number.isSafeInteger(seen.size) && seen.size >= 0 && fromHex(seen.root)?.length === 32;
    return valid ? seen : null;
  } catch {
    return null;
  }
}

/**
 * Checks `checkpoint` against the one this browser trusted before (RFC 9162 consistency proof) and,
 * when it extends it, remembers it instead. A rewritten history is not forgotten: the remembered
 * checkpoint stays, so every later visit says so too, until the user pins another key.
 */
async function checkHistory(session: Session, key: VerifierKey, checkpoint: Checkpoint): Promise<History> {
  const seen = readSeenCheckpoint(key);
  let history: History = { state: 'first' };
  if (seen !== null) {
    const seenRoot = fromHex(seen.root)!;
    if (checkpoint.size < seen.size) return { state: 'rewritten', seen, why: 'smaller' };
    if (checkpoint.size === seen.size) {
      if (!equalBytes(checkpoint.root, seenRoot)) return { state: 'rewritten', seen, why: 'other-root' };
      return { state: 'extends', seen };
    }
    if (seen.size > 0) {
      const answer = await callApi<{ hashes: unknown }>(session, 'GET', `/v1/ledger/proof/consistency?from=${seen.size}&to=${checkpoint.size}`);
      const hashes = (Array.isArray(answer.body.hashes) ? answer.body.hashes : []).map((h) => fromHex(String(h)));
      const proven = !hashes.some((h) => h === null) && (await verifyConsistency(seen.size, checkpoint.size, seenRoot, checkpoint.root, hashes as Uint8Array[]));
      if (!proven) return { state: 'rewritten', seen, why: 'bad-proof' };
    }
    history = { state: 'extends', seen };
  }
  const next: SeenCheckpoint = { key: key.text, size: checkpoint.size, root: toHex(checkpoint.root), seenAt: new Date().toISOString() };
  localStorage.setItem(SEEN_CHECKPOINT_ITEM, JSON.stringify(next));
  return history;
}

/** The latest checkpoint, when its signature verifies with `key`; null when there is none yet. */
async function readCheckpoint(session: Session, key: VerifierKey): Promise<Checkpoint | null> {
  const answer = await callApi<string>(session, 'GET', '/v1/ledger/checkpoint', undefined, 'text').catch((error: unknown) => {
    if ((error as { problem?: { status?: number } }).problem?.status === 404) return null;
    throw error;
  });
  return answer === null ? null : parseCheckpoint(await openNote(answer.body, key));
}

interface EntryItem {
  index: number;
  leaf_input: string;
}

interface EntriesPage {
  items: EntryItem[];
  /** Where the next, older page starts; null at the ledger's first matching entry. */
  next_cursor: string | null;
}

/** SHOWN_ENTRIES entries matching `filters`, newest first, from the newest or from `cursor` back. */
async function readNewestEntries(session: Session, filters: AuditFilters, cursor: string | null = null): Promise<EntriesPage> {
  const query = new URLSearchParams({ order: 'desc', limit: String(SHOWN_ENTRIES) });
  for (const [name, value] of Object.entries(filters) as [string, string | undefined][]) if (value) query.set(name, value);
  if (cursor !== null) query.set('cursor', cursor);
  return (await callApi<EntriesPage>(session, 'GET', `/v1/ledger/entries?${query.toString()}`)).body;
}

async function proveEntry(session: Session, entry: EntryItem, checkpoint: Checkpoint): Promise<EntryStatus> {
  if (entry.index >= checkpoint.size) return 'pending';
  const answer = await callApi<{ hashes: string[] }>(session, 'GET', `/v1/ledger/proof/inclusion?index=${entry.index}&tree_size=${checkpoint.size}`);
  const path = (Array.isArray(answer.body.hashes) ? answer.body.hashes : []).map((h) => fromHex(String(h)));
  if (path.some((h) => h === null)) return 'failed';
  // The leaf hash is computed here from the bytes shown, not taken from the proof's answer.
  const leafHash = await hashLeaf(new TextEncoder().encode(entry.leaf_input));
  const ok = await verifyInclusion(entry.index, checkpoint.size, leafHash, path as Uint8Array[], checkpoint.root);
  return ok ? 'verified' : 'failed';
}

function describeEntry(item: EntryItem, status: EntryStatus): AuditEntry {
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(item.leaf_input) as Record<string, unknown>;
  } catch {
    status = 'failed';
  }
  const text = (value: unknown) => (typeof value === 'string' || typeof value === 'number' ? String(value) : '');
  const actor = (parsed.actor ?? {}) as { subject?: unknown; token_id?: unknown };
  const subjects = Object.entries((parsed.subject_ids ?? {}) as Record<string, unknown>)
    .map(([name, value]) => `${name}=${text(value)}`)
    .join(' ');
  return {
    index: item.index,
    ts: text(parsed.ts),
    eventType: text(parsed.event_type),
    tenantId: typeof parsed.tenant_id === 'string' ? parsed.tenant_id : null,
    actor: text(actor.token_id) || text(actor.subject),
    subjects,
    status,
  };
}

export interface AuditView {
  trust: KeyTrust;
  checkpoint: Checkpoint | null;
  /** Why the checkpoint could not be trusted, when it could not. */
  checkpointFailure: string | null;
  /** The checkpoint against the one this browser trusted before; null without a checkpoint to compare. */
  history: History | null;
  entries: AuditEntry[];
  /** The cursor of the next older page, null when the oldest matching entry is shown. */
  older: string | null;
}

export async function readAudit(session: Session, filters: AuditFilters): Promise<AuditView> {
  const trust = await trustLedgerKey(session);
  const page = await readNewestEntries(session, filters);
  if (trust.state === 'changed') {
    return {
      trust,
      checkpoint: null,
      checkpointFailure: null,
      history: null,
      entries: page.items.map((item) => describeEntry(item, 'unchecked')),
      older: page.next_cursor,
    };
  }
  let checkpoint: Checkpoint | null = null;
  let checkpointFailure: string | null = null;
  let history: History | null = null;
  try {
    checkpoint = await readCheckpoint(session, trust.key);
    if (checkpoint !== null) history = await checkHistory(session, trust.key, checkpoint);
  } catch (error) {
    checkpointFailure = error instanceof Error ? error.message : String(error);
  }
  const view: AuditView = { trust, checkpoint, checkpointFailure, history, entries: [], older: null };
  return { ...view, entries: await proveAll(session, view, page.items), older: page.next_cursor };
}

/** The next older page added below `view`'s entries, proven against the same checkpoint. */
export async function readOlderAudit(session: Session, view: AuditView, filters: AuditFilters): Promise<AuditView> {
  if (view.older === null) return view;
  const page = await readNewestEntries(session, filters, view.older);
  // Entries come newest first, each once: a page that does not go on below the last shown is not the ledger.
  const last = view.entries.at(-1)?.index ?? Number.POSITIVE_INFINITY;
  const items = page.items.filter((item) => item.index < last);
  const entries = view.trust.state === 'changed' ? items.map((item) => describeEntry(item, 'unchecked')) : await proveAll(session, view, items);
  return { ...view, entries: [...view.entries, ...entries], older: page.next_cursor };
}

async function proveAll(session: Session, view: AuditView, items: EntryItem[]): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = [];
  for (const item of items) {
    let status: EntryStatus;
    // A checkpoint of a rewritten history proves nothing, whatever its proofs say.
    if (view.checkpointFailure !== null || view.history?.state === 'rewritten') status = 'failed';
    else if (view.checkpoint === null) status = 'pending';
    else status = await proveEntry(session, item, view.checkpoint).catch((): EntryStatus => 'failed');
    entries.push(describeEntry(item, status));
  }
  return entries;
}
