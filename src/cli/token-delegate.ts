/**
 * `ppn token delegate`: appends a block to a token offline (SPEC §5), signed with the current
 * holder's private key, naming a new holder and equal or narrower scopes, expiry and limits. What
 * the server would refuse is refused here first, saying why; the server checks it all again.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { InvalidArgumentError } from 'commander';
import { isoTime } from '../clock.js';
import { TokenError } from '../tokens/error.js';
import { isPrintableText, LIMIT_KEYS, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, type BlockClaims, type LimitKey, type TokenLimits } from '../tokens/format.js';
import { encodeBase64url, parsePublicKeyText, rawPublicKey } from '../tokens/keys.js';
import { delegateToken } from '../tokens/mint.js';
import { isScope, SCOPES, type Scope } from '../tokens/scopes.js';
import { CliError, EXIT_USAGE } from './command-line.js';
import { parseTokenText, readPrivateKey, readToken } from './holder.js';
import { resolveHolder } from './remotes.js';
import { formatLimits } from './token-inspect.js';

export interface DelegateOptions {
  /** The token, or a file holding it; without it, the saved remote's (or PPN_TOKEN). */
  token?: string | undefined;
  /** The holder's private key file; without it, the saved remote's (or PPN_KEY). */
  key?: string | undefined;
  /** The saved remote whose token and key to use instead of the current one's. */
  remote?: string | undefined;
  subject: string;
  scope: Scope[];
  expiresIn: number;
  limit?: TokenLimits | undefined;
  pop: boolean;
  name?: string | undefined;
  description?: string | undefined;
}

/** Commander parser for a repeatable `--scope`, also taking a comma-separated list, in any case. */
export function collectScopes(value: string, previous: Scope[] = []): Scope[] {
  // Any case: scopes are lowercase, so TENANT:INPUT means tenant:input.
  const scopes = value.split(',').map((s) => s.trim().toLowerCase());
  for (const scope of scopes) {
    if (!isScope(scope)) throw new InvalidArgumentError(`unknown scope "${scope}"; scopes are ${SCOPES.join(', ')}`);
  }
  return [...new Set([...previous, ...(scopes as Scope[])])];
}

/** Commander parser for a repeatable `--limit KEY=N`. */
export function collectLimit(value: string, previous: TokenLimits = {}): TokenLimits {
  const match = /^([a-z_]+)=(\d{1,15})$/.exec(value);
  if (!match || !(LIMIT_KEYS as readonly string[]).includes(match[1]!)) {
    throw new InvalidArgumentError(`--limit wants KEY=N with KEY one of ${LIMIT_KEYS.join(', ')}; got "${value}"`);
  }
  return { ...previous, [match[1] as LimitKey]: Number(match[2]) };
}

/**
 * `--name` and `--description` as the block's claims take them. Checked here rather than by a
 * Commander parser, whose refusal would echo the value: a newline in it would forge a line.
 */
function printableText(option: string, value: string, maxChars: number): string {
  if (!isPrintableText(value, maxChars)) {
    throw new CliError(`${option} wants printable text of 1 to ${maxChars} characters (no control characters, line separators or bidirectional overrides)`);
  }
  return value;
}

/**
 * The token to delegate and its holder's key: --token and --key when given, each else taken from
 * the saved remote (--remote NAME, or the current one; PPN_TOKEN and PPN_KEY over it), so a tenant
 * admin who saved theirs delegates with neither.
 */
function tokenAndKey(options: DelegateOptions): { token: string; holderKey: KeyObject; keySource: string } {
  const saved = options.token === undefined || options.key === undefined || options.remote !== undefined ? resolveHolder(options.remote) : undefined;
  const token = options.token !== undefined ? readToken(options.token, '--token') : saved?.token;
  if (token === undefined) throw new CliError(`no token to delegate: give --token, or save one with the remote (${saved!.source} has none)`, EXIT_USAGE);
  if (options.key !== undefined) return { token, holderKey: readPrivateKey(options.key), keySource: options.key };
  if (saved?.key === undefined) throw new CliError(`no holder key to sign with: give --key, or save one with the remote (${saved!.source} has none)`, EXIT_USAGE);
  return { token, holderKey: saved.key, keySource: saved.keySource! };
}

export function delegate(options: DelegateOptions, nowMs = Date.now()): void {
  const { token, holderKey, keySource } = tokenAndKey(options);
  const blocks = parseTokenText(token);
  const parent = blocks[blocks.length - 1]!.claims;
  const subject = parsePublicKeyText(options.subject);
  if (!subject) throw new CliError('--subject wants an Ed25519 public key (as ppn keygen prints it: 32 bytes in base64url; base64 or hex also work)');
  const name = options.name === undefined ? undefined : printableText('--name', options.name, MAX_NAME_CHARS);
  const description = options.description === undefined ? undefined : printableText('--description', options.description, MAX_DESCRIPTION_CHARS);
  const now = Math.floor(nowMs / 1000);
  if (parent.exp <= now) throw new CliError(`the token expired at ${isoTime(parent.exp * 1000)}; it cannot be delegated`);

  // Limits the parent sets carry down unless narrowed here: a child must restate each of them.
  const limits = { ...parent.lim, ...(options.limit ?? {}) };
  const claims: Omit<BlockClaims, 'kid' | 'tid' | 'jti'> = {
    sub: encodeBase64url(subject),
    scp: options.scope,
    iat: now,
    exp: now + options.expiresIn,
    ...(Object.keys(limits).length > 0 ? { lim: limits } : {}),
    ...(options.pop ? { pop: true } : {}),
    ...(name !== undefined ? { nam: name } : {}),
    ...(description !== undefined ? { dsc: description } : {}),
  };
  let delegated: string;
  try {
    delegated = delegateToken(token, holderKey, claims);
  } catch (error) {
    if (error instanceof TypeError && /not the holder/.test(error.message)) {
      const given = encodeBase64url(rawPublicKey(createPublicKey(holderKey)));
      throw new CliError(`refused: the key ${keySource} (public key ${given}) is not this token's holder; it is held by ${parent.sub}`);
    }
    if (error instanceof TokenError && error.code === 'widened') {
      const held = `the token has scopes ${parent.scp.join(', ')}, expires ${isoTime(parent.exp * 1000)} (in ${parent.exp - now} s)${parent.lim ? `, limits ${formatLimits(parent.lim)}` : ''}`;
      throw new CliError(`refused: ${error.message}; ${held}`);
    }
    if (error instanceof TokenError && error.code === 'too_large' && (name !== undefined || description !== undefined)) {
      throw new CliError(`refused: ${error.message}; a shorter --name or --description would leave room`);
    }
    if (error instanceof TokenError) throw new CliError(`refused: ${error.message}`);
    throw error;
  }
  process.stdout.write(`${delegated}\n`);
}
