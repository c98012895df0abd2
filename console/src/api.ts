/**
 * Calls to the API of the server that served the console (same origin), signed under a `pop`
 * session. Errors come back as RFC 9457 problems; the console words them from their `code`.
 */
import type { Session } from './session.js';
import { signRequest } from './signing.js';

export interface Problem {
  status: number;
  code?: string;
  title?: string;
  detail?: string;
  [member: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly problem: Problem,
    /** Seconds, from `Retry-After`, on a rate limit. */
    readonly retryAfter: number | undefined,
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${problem.status}`);
    this.name = 'ApiError';
  }
}

export interface Answer<T> {
  body: T;
  headers: Headers;
}

/** `as: 'text'` reads a text answer (the ledger's key and checkpoint) instead of JSON. */
export async function callApi<T>(session: Session, method: string, target: string, payload?: unknown, as: 'json' | 'text' = 'json'): Promise<Answer<T>> {
  const url = new URL(target, location.origin);
  const body = payload === undefined ? undefined : new TextEncoder().encode(JSON.stringify(payload));
  const headers: Record<string, string> = { authorization: `Bearer ${session.token}`, accept: as === 'text' ? 'text/plain' : 'application/json' };
  if (body) headers['content-type'] = 'application/json';
  if (session.key) {
    const request = { method, path: url.pathname, query: url.search.slice(1), body };
    Object.assign(headers, await signRequest(request, { key: session.key, keyid: session.facts.holder, now: Date.now() }));
  }
  const response = await fetch(url, { method, headers, body, credentials: 'omit', cache: 'no-store' });
  const text = await response.text();
  if (response.ok && as === 'text') return { body: text as T, headers: response.headers };
  const parsed: unknown = text === '' ? null : JSON.parse(text);
  if (!response.ok) {
    const problem = (typeof parsed === 'object' && parsed !== null ? parsed : { status: response.status }) as Problem;
    const retryAfter = Number(response.headers.get('retry-after'));
    throw new ApiError({ ...problem, status: response.status }, Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined);
  }
  return { body: parsed as T, headers: response.headers };
}

/** The tenant's API rate from a `RateLimit` and `RateLimit-Policy` pair: requests used of the quota in the window. */
export function readRateLimit(headers: Headers): { used: number; limit: number } | undefined {
  const quota = /;q=(\d+)/.exec(headers.get('ratelimit-policy') ?? '');
  const remaining = /;r=(\d+)/.exec(headers.get('ratelimit') ?? '');
  if (!quota || !remaining) return undefined;
  const limit = Number(quota[1]);
  return { used: Math.max(0, limit - Number(remaining[1])), limit };
}
