/** Why an untrusted token was refused. Every code maps to HTTP 401 at the API. */
export type TokenErrorCode = 'malformed' | 'too_large' | 'too_many_blocks' | 'unknown_key' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'widened';

export class TokenError extends Error {
  readonly code: TokenErrorCode;
  constructor(code: TokenErrorCode, message: string) {
    super(message);
    this.name = 'TokenError';
    this.code = code;
  }
}
