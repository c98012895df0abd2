/**
 * The product's closed set of error codes. Every failure a caller can see is a PpnError with one of
 * these codes; src/api/problem.ts is the one place that turns them into RFC 9457 problem+json, and
 * docs/errors.md documents each (a test keeps the two lists equal).
 */
export const ERROR_CODES = [
  'invalid_input',
  'unauthenticated',
  'forbidden',
  'client_certificate_required',
  'tenant_suspended',
  'not_found',
  'method_not_allowed',
  'request_timeout',
  'conflict',
  'ledger_not_integrated',
  'quota_exceeded',
  'rate_limited',
  'too_many_connections',
  'body_too_large',
  'uri_too_long',
  'headers_too_large',
  'unsupported_media_type',
  'store_unavailable',
  'ledger_unverified',
  'ledger_verifying',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class PpnError extends Error {
  readonly code: ErrorCode;
  /** Extension members added to the problem document (e.g. `quota`, `field`). */
  readonly extensions: Record<string, unknown>;
  /** Extra response headers (e.g. `Retry-After`). */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, detail: string, options: { extensions?: Record<string, unknown>; headers?: Record<string, string> } = {}) {
    super(detail);
    this.name = 'PpnError';
    this.code = code;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

export function invalidInput(field: string, detail: string): PpnError {
  return new PpnError('invalid_input', detail, { extensions: { field } });
}

export function notFound(what: string): PpnError {
  return new PpnError('not_found', `${what} not found`);
}
