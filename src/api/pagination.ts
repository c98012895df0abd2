/** Opaque list cursors: base64url of the last id returned. Lists are ordered by id. */
import { invalidInput } from '../errors.js';

export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof value.after === 'string' && value.after.length <= 128) return value.after;
  } catch {
    // fall through to the error below
  }
  throw invalidInput('cursor', 'cursor is not one this server returned');
}

/** Fetches limit+1 rows to learn whether another page exists. */
export function pageOf<T>(rows: T[], limit: number, idOf: (row: T) => string): { items: T[]; next_cursor: string | null } {
  const items = rows.slice(0, limit);
  const next_cursor = rows.length > limit ? encodeCursor(idOf(items[items.length - 1]!)) : null;
  return { items, next_cursor };
}
