/** `service-fs read`: prints ledger entries from the data directory, filtered (SPEC §8). */
import { InvalidArgumentError } from 'commander';
import { EVENT_TYPES, type EventType, type LedgerEntry } from '../ledger/entry.js';
import { readEntries, type EntryFilter } from '../store/ledger.js';
import { oneOf } from './command-line.js';
import { openExistingStore } from './common.js';

/** What `read` selects and how it prints, wherever it reads from. */
export interface ReadFilters {
  filter: string[];
  eventType?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  limit?: number | undefined;
  json: boolean;
}

export interface ReadOptions extends ReadFilters {
  dataDir: string;
  databaseUrl?: string | undefined;
}

const FILTER_KEYS = { 'tenant-id': 'tenantId', 'vm-id': 'vmId', 'node-id': 'nodeId', 'token-id': 'tokenId' } as const;
const PAGE = 1000;

/** Parses `KEY=VALUE` filters into an EntryFilter; unknown keys are usage errors. */
export function parseFilters(filters: string[]): Partial<Pick<EntryFilter, (typeof FILTER_KEYS)[keyof typeof FILTER_KEYS]>> {
  const parsed: Partial<Pick<EntryFilter, (typeof FILTER_KEYS)[keyof typeof FILTER_KEYS]>> = {};
  for (const text of filters) {
    const eq = text.indexOf('=');
    const key = text.slice(0, eq) as keyof typeof FILTER_KEYS;
    if (eq < 1 || !(key in FILTER_KEYS) || eq === text.length - 1) {
      throw new InvalidArgumentError(`--filter wants KEY=VALUE with KEY one of ${Object.keys(FILTER_KEYS).join(', ')}; got "${text}"`);
    }
    parsed[FILTER_KEYS[key]] = text.slice(eq + 1);
  }
  return parsed;
}

export function parseTime(option: string): (value: string) => string {
  return (value) => {
    const ms = Date.parse(value);
    if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) {
      throw new InvalidArgumentError(`${option} wants an RFC 3339 time such as 2026-01-31T12:00:00Z; got "${value}"`);
    }
    return new Date(ms).toISOString();
  };
}

/** `--event-type` in any case (`vm_created` is VM_CREATED); a wrong one is refused with the list. */
export const parseEventType: (value: string) => EventType = oneOf('--event-type', EVENT_TYPES);

/** One human-readable line: index, time, event, tenant, actor, subjects, data. */
export function formatEntry(entry: LedgerEntry): string {
  const subjects = Object.entries(entry.subject_ids).map(([k, v]) => `${k.replace('_id', '')}=${v}`);
  // A name is the token holder's own text: quoted, so it cannot pass for another field.
  const actor = (entry.actor.token_id ?? entry.actor.subject ?? '-') + (entry.actor.name !== undefined ? `(${JSON.stringify(entry.actor.name)})` : '');
  return [
    `#${entry.index}`,
    entry.ts,
    entry.event_type,
    `tenant=${entry.tenant_id ?? '-'}`,
    `actor=${actor}`,
    ...subjects,
    `request=${entry.request_id ?? '-'}`,
    JSON.stringify(entry.data),
  ].join(' ');
}

export async function readLedger(options: ReadOptions): Promise<void> {
  const store = openExistingStore(options.dataDir, options.databaseUrl);
  try {
    const base: EntryFilter = {
      ...parseFilters(options.filter),
      ...(options.eventType ? { eventType: options.eventType as EventType } : {}),
      ...(options.since ? { since: options.since } : {}),
      ...(options.until ? { until: options.until } : {}),
      limit: PAGE,
    };
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    let afterIndex: number | undefined;
    while (remaining > 0) {
      const page = await readEntries(store.db, { ...base, limit: Math.min(PAGE, remaining), ...(afterIndex !== undefined ? { afterIndex } : {}) });
      for (const { line } of page) {
        // --json prints the stored bytes exactly: SHA-256(0x00 || line) is the entry's leaf hash.
        process.stdout.write(options.json ? `${line}\n` : `${formatEntry(JSON.parse(line) as LedgerEntry)}\n`);
      }
      if (page.length === 0) break;
      remaining -= page.length;
      afterIndex = page[page.length - 1]!.index;
    }
  } finally {
    await store.close();
  }
}
