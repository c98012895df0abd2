/**
 * The one HTTP client `ppn` talks to the server through. It signs every request with the holder's
 * key when one is configured (RFC 9421 proof of possession, src/httpsig/sign.ts; a server that does
 * not need it ignores it), and turns an error answer into a readable refusal: the problem's title
 * and detail, and what to do next (problemMessage). An unreachable server, or one whose certificate
 * does not verify (src/tls/client.ts), exits 3.
 */
import { systemClock } from '../clock.js';
import { signRequest } from '../httpsig/sign.js';
import { isCertificateError, send } from '../tls/client.js';
import { CliError, EXIT_UNREACHABLE } from './command-line.js';
import { problemMessage, type Problem } from './problems.js';
import type { Connection } from './remotes.js';

export interface ApiAnswer<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** A refusal from the server: its problem, kept for --json and for callers that branch on it. */
export class ProblemError extends CliError {
  constructor(
    readonly problem: Problem,
    message: string,
  ) {
    super(message);
  }
}

export class ApiClient {
  private readonly signingKey;

  constructor(readonly connection: Connection) {
    this.signingKey = connection.key;
  }

  /** Sends one request; answers the parsed body of a 2xx, and throws a ProblemError otherwise. */
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
    const url = new URL(`${this.connection.url}${path}`);
    const bytes = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = bytes ? { 'content-type': 'application/json' } : {};
    if (this.connection.token !== undefined) headers.authorization = `Bearer ${this.connection.token}`;
    if (this.signingKey) {
      const parts = { method, path: url.pathname, query: url.search.slice(1), body: bytes };
      Object.assign(headers, signRequest(parts, { privateKey: this.signingKey, clock: systemClock }));
    }
    let response: Response;
    try {
      response = await send(url, { method, headers, body: bytes }, this.connection.tls);
    } catch (error) {
      throw unreachable(this.connection, error);
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (response.ok) return { status: response.status, body: parsed as T, headers: response.headers };
    const problem: Problem =
      typeof parsed === 'object' && parsed !== null ? (parsed as Problem) : { status: response.status, title: response.statusText, detail: String(parsed).slice(0, 500) };
    problem.status ??= response.status;
    throw new ProblemError(problem, problemMessage(problem, { method, path, connection: this.connection, retryAfter: response.headers.get('retry-after') }));
  }

  /** Every item of a paginated list, following `next_cursor`. */
  async listAll<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const separator = path.includes('?') ? '&' : '?';
      const page: ApiAnswer<{ items: T[]; next_cursor: string | null }> = await this.request(
        'GET',
        `${path}${cursor ? `${separator}cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      items.push(...page.body.items);
      cursor = page.body.next_cursor;
    } while (cursor);
    return items;
  }
}

function unreachable(connection: Connection, error: unknown): CliError {
  const cause = (error as Error).cause;
  const reason =
    cause instanceof AggregateError
      ? cause.errors.map((e: Error) => e.message).join('; ') || (cause as { code?: string }).code
      : cause instanceof Error
        ? cause.message
        : (error as Error).message;
  if (isCertificateError(error)) return new CliError(`refused ${connection.url} (${connection.source}): ${reason}`, EXIT_UNREACHABLE);
  return new CliError(
    `cannot reach ${connection.url} (${connection.source}): ${reason}\n  Is the server running there? "ppn remote list" shows the saved URLs; PPN_SERVER or --remote picks another.`,
    EXIT_UNREACHABLE,
  );
}
