/**
 * Verifying a token: every signature along the chain, and that no block widens what the block before
 * it granted (SPEC §5). Pure: the platform keys and the time are passed in. Revocation and tenant
 * state live in the store and are checked by the API on every request, not here.
 */
import { verify, type KeyObject } from 'node:crypto';
import { TokenError } from './error.js';
import { delegatedBlockId, delegateSigningInput, LIMIT_KEYS, parseToken, rootSigningInput, type TokenLimits } from './format.js';
import { holderPublicKey } from './keys.js';
import { scopesWithin, type Scope } from './scopes.js';

/** Issued-at may lie this far in the future, for clock skew between machines. */
const CLOCK_SKEW_SECONDS = 60;

export interface ChainLink {
  /** The block's id: block 0's jti, or the id derived from a delegated block's signature. */
  jti: string;
  sub: string;
  scp: Scope[];
  exp: number;
  lim?: TokenLimits;
  /** A delegated block's name and description, from its claims (an issued token's are in its record). */
  nam?: string;
  dsc?: string;
}

export interface VerifiedToken {
  /** The platform key that signed the root block. */
  rootKid: string;
  tenantId: string | null;
  /** The final block's scopes: what this token may do. */
  scopes: Scope[];
  /** The final holder's public key. */
  subject: string;
  /** The final block's id: the token's id for sessions, actors and revocation. */
  tokenId: string;
  /** Expiry in seconds since the epoch (no block may outlive its parent, so this is the last block's). */
  expiresAt: number;
  /** Whether any block demands proof of possession. */
  proofOfPossession: boolean;
  chain: ChainLink[];
}

export interface VerifyOptions {
  /** Looks up a platform public key by its id; undefined when unknown or retired. */
  platformKey: (kid: string) => KeyObject | undefined;
  /** Milliseconds since the epoch. */
  now: number;
}

export function verifyToken(text: string, options: VerifyOptions): VerifiedToken {
  const blocks = parseToken(text);
  const root = blocks[0]!;
  const rootKey = options.platformKey(root.claims.kid!);
  if (!rootKey) throw new TokenError('unknown_key', `token is signed by platform key ${root.claims.kid}, which is unknown or retired`);
  if (!verify(null, rootSigningInput(root.payload), rootKey, root.signature)) {
    throw new TokenError('bad_signature', 'block 0: signature does not verify');
  }
  const isPlatform = root.claims.scp.includes('service:platform-admin');
  const tenantless = root.claims.tid === undefined;
  // Without a tenant: a platform admin, or a shared fleet node (node:agent alone, SPEC §7).
  const isSharedNode = tenantless && root.claims.scp.length === 1 && root.claims.scp[0] === 'node:agent';
  if ((isPlatform && !tenantless) || (tenantless && !isPlatform && !isSharedNode)) {
    throw new TokenError('malformed', 'platform-admin scope requires a root block without a tenant, and only it (or node:agent alone, for a shared node)');
  }
  if (blocks.length > 1 && tenantless) {
    // A tenantless chain narrowed to tenant scopes would act in no tenant, or in all of them.
    throw new TokenError('malformed', 'platform tokens cannot be delegated');
  }
  if (blocks.length > 1 && root.claims.pop !== true) {
    // Every delegated token starts with its parent's token, byte for byte. Unless the root demands
    // proof of possession, a delegate could cut its own block off and hold the parent's bearer token.
    throw new TokenError('malformed', 'a delegated token needs a root that demands proof of possession (pop)');
  }
  for (let i = 1; i < blocks.length; i++) {
    const parent = blocks[i - 1]!;
    const block = blocks[i]!;
    const parentKey = holderPublicKey(parent.claims.sub);
    if (!verify(null, delegateSigningInput(parent.signature, block.payload), parentKey, block.signature)) {
      throw new TokenError('bad_signature', `block ${i}: signature does not verify`);
    }
    if (!scopesWithin(block.claims.scp, parent.claims.scp)) throw new TokenError('widened', `block ${i}: scopes exceed its parent's`);
    if (block.claims.exp > parent.claims.exp) throw new TokenError('widened', `block ${i}: expiry is later than its parent's`);
    if (!limitsWithin(block.claims.lim, parent.claims.lim)) throw new TokenError('widened', `block ${i}: limits exceed its parent's`);
  }
  const last = blocks[blocks.length - 1]!.claims;
  const blockIds = blocks.map((block, i) => (i === 0 ? block.claims.jti! : delegatedBlockId(block.signature)));
  const token: VerifiedToken = {
    rootKid: root.claims.kid!,
    tenantId: root.claims.tid ?? null,
    scopes: last.scp,
    subject: last.sub,
    tokenId: blockIds[blockIds.length - 1]!,
    expiresAt: last.exp,
    proofOfPossession: blocks.some((b) => b.claims.pop === true),
    chain: blocks.map(({ claims }, i) => ({
      jti: blockIds[i]!,
      sub: claims.sub,
      scp: claims.scp,
      exp: claims.exp,
      ...(claims.lim ? { lim: claims.lim } : {}),
      ...(claims.nam !== undefined ? { nam: claims.nam } : {}),
      ...(claims.dsc !== undefined ? { dsc: claims.dsc } : {}),
    })),
  };
  assertTokenCurrent(token, options.now, root.claims.iat);
  return token;
}

const PLATFORM_TOKEN_EXPIRED = 'platform-admin token has expired: run "service-vm-tenant admin-token" on a server\'s data directory for a new one';

/** Expiry is checked on every use, including tokens served from a verification cache. */
export function assertTokenCurrent(token: VerifiedToken, now: number, issuedAt?: number): void {
  if (now >= token.expiresAt * 1000) {
    // A platform token is minted on the server's machine, not through the API: say how to get one.
    if (token.tenantId === null) throw new TokenError('expired', PLATFORM_TOKEN_EXPIRED);
    throw new TokenError('expired', 'token has expired');
  }
  if (issuedAt !== undefined && issuedAt * 1000 > now + CLOCK_SKEW_SECONDS * 1000) {
    throw new TokenError('not_yet_valid', 'token is issued in the future');
  }
}

/** A child's limits are within its parent's when every limit the parent sets is set no higher. */
export function limitsWithin(child: TokenLimits | undefined, parent: TokenLimits | undefined): boolean {
  if (!parent) return true;
  return LIMIT_KEYS.every((key) => {
    const cap = parent[key];
    if (cap === undefined) return true;
    const value = child?.[key];
    return value !== undefined && value <= cap;
  });
}
