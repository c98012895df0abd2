/**
 * The `pct1` wire form of a capability token (SPEC §5):
 *
 *   pct1.<b64url(payload 0)>.<b64url(sig 0)>.<b64url(payload 1)>.<b64url(sig 1)>...
 *
 * Block 0 is signed by a platform key over ROOT_DOMAIN || payload. Block i > 0 is signed by the key
 * named in block i-1's `sub`, over DELEGATE_DOMAIN || signature(i-1) || payload(i); chaining the
 * previous signature stops a block being spliced onto another token.
 *
 * Everything here handles attacker-controlled text: sizes are bounded before any decoding, and every
 * claim is checked for type and shape, so bad input ends in a TokenError, never an uncaught throw.
 */
import { createHash } from 'node:crypto';
import { TokenError } from './error.js';
import { decodeBase64url, encodeBase64url, isSmallOrderPoint } from './keys.js';
import { isScope, type Scope } from './scopes.js';

export const TOKEN_PREFIX = 'pct1';
export const MAX_TOKEN_BYTES = 4096;
export const MAX_BLOCKS = 8;
/** The longest a token may live: 90 days. */
export const MAX_TOKEN_LIFETIME_SECONDS = 90 * 24 * 3600;
const ROOT_DOMAIN = Buffer.from('ppn-token-v1/root\n');
const DELEGATE_DOMAIN = Buffer.from('ppn-token-v1/delegate\n');
const BLOCK_ID_DOMAIN = Buffer.from('ppn-token-v1/block-id\n');
const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

export const LIMIT_KEYS = ['max_vms', 'storage_quota_gb', 'max_vcpus', 'max_memory_mb'] as const;
export type LimitKey = (typeof LIMIT_KEYS)[number];
export type TokenLimits = Partial<Record<LimitKey, number>>;

export interface BlockClaims {
  /** Platform key id; block 0 only. */
  kid?: string;
  /** Tenant id; block 0 only, absent for platform scope. */
  tid?: string;
  /** The holder's Ed25519 public key, base64url. */
  sub: string;
  scp: Scope[];
  /** Issued-at and expiry, seconds since the epoch. */
  iat: number;
  exp: number;
  /**
   * Block 0 only: the token id the platform chose. A delegated block's id is derived from its
   * signature (delegatedBlockId), so a delegate cannot pick an id and pass as another token.
   */
  jti?: string;
  lim?: TokenLimits;
  /** When set, requests must carry a proof-of-possession signature by the final holder. */
  pop?: boolean;
  /**
   * Delegated blocks only: a name and a description for people reading lists, sessions and the
   * ledger. An issued token's name is kept in the server's record instead, so its token stays short.
   */
  nam?: string;
  dsc?: string;
}

export interface TokenBlock {
  claims: BlockClaims;
  payload: Buffer;
  signature: Buffer;
}

export const TENANT_ID_PATTERN = /^(?!.*--)[a-z][a-z0-9-]{0,61}[a-z0-9]$/;
const JTI_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const KID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const CLAIM_KEYS = new Set(['kid', 'tid', 'sub', 'scp', 'iat', 'exp', 'jti', 'lim', 'pop', 'nam', 'dsc']);

export const MAX_NAME_CHARS = 64;
export const MAX_DESCRIPTION_CHARS = 256;
/**
 * Printable text, as a pattern for the API's schemas and for the token claims alike: no control
 * characters (C0, DEL, C1), no line or paragraph separators, no bidirectional overrides and no lone
 * surrogates. A name is shown in listings and terminals; any of these would let it forge a line or
 * make it read as something else. Compiled with the `u` flag, so a surrogate pair is one character.
 */
export const PRINTABLE_PATTERN = '^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069\\ud800-\\udfff]*$';
const PRINTABLE = new RegExp(PRINTABLE_PATTERN, 'u');

/** A name or description: printable text of 1 to `maxChars` characters (code points, as JSON Schema counts). */
export function isPrintableText(value: unknown, maxChars: number): value is string {
  if (typeof value !== 'string' || value.length === 0 || !PRINTABLE.test(value)) return false;
  return [...value].length <= maxChars;
}

export function rootSigningInput(payload: Buffer): Buffer {
  return Buffer.concat([ROOT_DOMAIN, payload]);
}

export function delegateSigningInput(previousSignature: Buffer, payload: Buffer): Buffer {
  return Buffer.concat([DELEGATE_DOMAIN, previousSignature, payload]);
}

/** The id of a delegated block: `tok-` and 26 base32 characters of SHA-256 over its signature. */
export function delegatedBlockId(signature: Buffer): string {
  const digest = createHash('sha256').update(BLOCK_ID_DOMAIN).update(signature).digest();
  let id = '';
  for (let bit = 0; id.length < 26; bit += 5) {
    const byte = bit >> 3;
    const pair = (digest[byte]! << 8) | (digest[byte + 1] ?? 0);
    id += CROCKFORD[(pair >> (11 - (bit & 7))) & 31];
  }
  return `tok-${id}`;
}

export function serializeToken(blocks: readonly { payload: Buffer; signature: Buffer }[]): string {
  const parts = blocks.flatMap((b) => [encodeBase64url(b.payload), encodeBase64url(b.signature)]);
  return [TOKEN_PREFIX, ...parts].join('.');
}

export function encodeClaims(claims: BlockClaims): Buffer {
  return Buffer.from(JSON.stringify(claims));
}

/** Splits and decodes a token; checks shape only, no signatures. */
export function parseToken(text: string): TokenBlock[] {
  if (typeof text !== 'string' || text.length === 0) throw new TokenError('malformed', 'token is empty');
  if (Buffer.byteLength(text) > MAX_TOKEN_BYTES) throw new TokenError('too_large', `token exceeds ${MAX_TOKEN_BYTES} bytes`);
  const parts = text.split('.');
  if (parts[0] !== TOKEN_PREFIX) throw new TokenError('malformed', 'token does not start with "pct1."');
  const body = parts.slice(1);
  if (body.length === 0 || body.length % 2 !== 0) throw new TokenError('malformed', 'token has an incomplete block');
  if (body.length / 2 > MAX_BLOCKS) throw new TokenError('too_many_blocks', `token has more than ${MAX_BLOCKS} blocks`);
  const blocks: TokenBlock[] = [];
  for (let i = 0; i < body.length; i += 2) {
    const index = i / 2;
    const payload = decodeBase64url(body[i]!);
    const signature = decodeBase64url(body[i + 1]!);
    if (!payload || payload.length === 0) throw new TokenError('malformed', `block ${index}: payload is not base64url`);
    if (!signature || signature.length !== 64) throw new TokenError('malformed', `block ${index}: signature is not 64 bytes of base64url`);
    blocks.push({ claims: parseClaims(payload, index), payload, signature });
  }
  return blocks;
}

function parseClaims(payload: Buffer, index: number): BlockClaims {
  const fail = (why: string): never => {
    throw new TokenError('malformed', `block ${index}: ${why}`);
  };
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    return fail('payload is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('payload is not an object');
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!CLAIM_KEYS.has(key)) fail(`unknown claim "${key}"`);

  const claims: BlockClaims = {
    sub: isHolderKey(raw.sub) ? raw.sub : fail('sub is not a 32-byte base64url Ed25519 key of full order'),
    scp: parseScopes(raw.scp) ?? fail('scp is not a non-empty list of known scopes'),
    iat: isSeconds(raw.iat) ? raw.iat : fail('iat is not a whole number of seconds'),
    exp: isSeconds(raw.exp) ? raw.exp : fail('exp is not a whole number of seconds'),
  };
  if (index === 0) {
    claims.jti = typeof raw.jti === 'string' && JTI_PATTERN.test(raw.jti) ? raw.jti : fail('jti is missing or malformed');
    claims.kid = typeof raw.kid === 'string' && KID_PATTERN.test(raw.kid) ? raw.kid : fail('kid is missing or malformed');
    if (raw.tid !== undefined) {
      claims.tid = typeof raw.tid === 'string' && TENANT_ID_PATTERN.test(raw.tid) ? raw.tid : fail('tid is malformed');
    }
  } else if (raw.kid !== undefined || raw.tid !== undefined || raw.jti !== undefined) {
    fail('only block 0 may carry kid, tid or jti');
  }
  if (raw.lim !== undefined) claims.lim = parseLimits(raw.lim) ?? fail('lim is not an object of known non-negative limits');
  if (raw.pop !== undefined) claims.pop = typeof raw.pop === 'boolean' ? raw.pop : fail('pop is not a boolean');
  if (index === 0 && (raw.nam !== undefined || raw.dsc !== undefined)) fail("only delegated blocks carry nam or dsc; an issued token's name is in the server's record");
  if (raw.nam !== undefined) {
    claims.nam = isPrintableText(raw.nam, MAX_NAME_CHARS) ? raw.nam : fail(`nam is not printable text of 1 to ${MAX_NAME_CHARS} characters`);
  }
  if (raw.dsc !== undefined) {
    claims.dsc = isPrintableText(raw.dsc, MAX_DESCRIPTION_CHARS) ? raw.dsc : fail(`dsc is not printable text of 1 to ${MAX_DESCRIPTION_CHARS} characters`);
  }
  if (claims.exp <= claims.iat) fail('exp is not after iat');
  return claims;
}

function isHolderKey(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const raw = decodeBase64url(value);
  return raw !== null && raw.length === 32 && !isSmallOrderPoint(raw);
}

function isSeconds(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function parseScopes(value: unknown): Scope[] | null {
  if (!Array.isArray(value) || value.length === 0 || value.length > 6) return null;
  if (!value.every(isScope) || new Set(value).size !== value.length) return null;
  return value;
}

function parseLimits(value: unknown): TokenLimits | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const limits: TokenLimits = {};
  for (const [key, amount] of Object.entries(value)) {
    if (!(LIMIT_KEYS as readonly string[]).includes(key) || !isSeconds(amount)) return null;
    limits[key as LimitKey] = amount;
  }
  return limits;
}
