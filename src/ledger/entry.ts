/**
 * Audit ledger entries (SPEC §8). An entry is stored as the exact bytes of one line of JSON; those
 * bytes are what the Merkle tree hashes (leaf = SHA-256(0x00 || bytes)), so anyone holding the
 * line can recompute its leaf. The encoder fixes the top-level order (SPEC §8) and sorts the keys of
 * nested objects, so the bytes depend only on values.
 */
export const EVENT_TYPES = [
  'TENANT_CREATED',
  'TENANT_UPDATED',
  'TENANT_DELETED',
  'TOKEN_ISSUED',
  'TOKEN_REVOKED',
  'KEY_ROTATED',
  'KEY_RETIRED',
  'VM_CREATED',
  'VM_CREATE_DENIED',
  'VM_STATE_CHANGED',
  'VM_DELETED',
  'NODE_ENROLLED',
  'NODE_STATE_CHANGED',
  'NODE_REMOVED',
  'LEDGER_ROLLED_BACK',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface Actor {
  token_id: string | null;
  subject: string | null;
  scope: string[];
  /** The calling token's name (its final block's), when it has one; absent otherwise. */
  name?: string;
}

export interface SubjectIds {
  vm_id?: string;
  node_id?: string;
  token_id?: string;
}

/** What a state change asks the ledger to record; the store assigns index and time. */
export interface EntryDraft {
  event_type: EventType;
  tenant_id: string | null;
  actor: Actor;
  request_id: string | null;
  subject_ids: SubjectIds;
  data: Record<string, unknown>;
}

export interface LedgerEntry extends EntryDraft {
  index: number;
  ts: string;
}

/** The canonical bytes of an entry: one line of JSON, fields in SPEC §8 order, no trailing newline. */
export function encodeEntry(entry: LedgerEntry): string {
  return JSON.stringify({
    index: entry.index,
    ts: entry.ts,
    event_type: entry.event_type,
    tenant_id: entry.tenant_id,
    actor: encodeActor(entry.actor),
    request_id: entry.request_id,
    subject_ids: canonical(entry.subject_ids),
    data: canonical(entry.data),
  });
}

/** The actor in a fixed order; `name` comes last and only when set, so entries without one keep their bytes. */
function encodeActor(actor: Actor): Actor {
  const { token_id, subject, scope, name } = actor;
  return name === undefined ? { token_id, subject, scope } : { token_id, subject, scope, name };
}

/** Nested objects with their keys sorted, so equal values always give equal bytes. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = canonical((value as Record<string, unknown>)[key]);
  return sorted;
}

/**
 * The index a stored line says it has (or why it says none). A line `encodeEntry` wrote starts with
 * `{"index":N,`, so the index expected is checked first, without parsing the whole line.
 */
export function claimedIndex(line: string, expected: number): unknown {
  if (line.startsWith(`{"index":${expected},`)) return expected;
  try {
    return (JSON.parse(line) as { index?: unknown }).index;
  } catch {
    return 'unreadable (not JSON)';
  }
}

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** The actor recorded for changes made by the operator on the server's own machine (no token). */
export const LOCAL_OPERATOR: Actor = { token_id: null, subject: 'local-operator', scope: ['service:platform-admin'] };

/** The actor recorded for changes the control plane makes on its own: placements, unreachable nodes. */
export const CONTROL_PLANE: Actor = { token_id: null, subject: 'control-plane', scope: [] };
