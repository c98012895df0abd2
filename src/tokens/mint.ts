/** Making tokens: root tokens signed by a platform key, and offline delegation by a holder. */
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { TokenError } from './error.js';
import {
  delegateSigningInput,
  encodeClaims,
  parseToken,
  rootSigningInput,
  serializeToken,
  type BlockClaims,
} from './format.js';
import { encodeBase64url, rawPublicKey } from './keys.js';
import { scopesWithin } from './scopes.js';
import { limitsWithin } from './verify.js';

export function mintRootToken(claims: BlockClaims, platformKey: KeyObject): string {
  if (!claims.kid) throw new TypeError('a root block needs kid');
  const payload = encodeClaims(claims);
  const signature = sign(null, rootSigningInput(payload), platformKey);
  return serializeToken([{ payload, signature }]);
}

/**
 * Appends a block to `token`, signed by the current holder's private key. The new block may only
 * narrow: its scopes, expiry and limits are checked here so a holder learns at once, and again by
 * every verifier, so a hand-made block gains nothing.
 */
export function delegateToken(token: string, holderKey: KeyObject, claims: Omit<BlockClaims, 'kid' | 'tid'>): string {
  const blocks = parseToken(token);
  const last = blocks[blocks.length - 1]!;
  if (encodeBase64url(rawPublicKey(createPublicKey(holderKey))) !== last.claims.sub) {
    throw new TypeError('the key given is not the holder of this token');
  }
  if (!scopesWithin(claims.scp, last.claims.scp)) throw new TokenError('widened', "delegated scopes exceed the token's scopes");
  if (claims.exp > last.claims.exp) throw new TokenError('widened', "delegated expiry is later than the token's expiry");
  if (!limitsWithin(claims.lim, last.claims.lim)) throw new TokenError('widened', "delegated limits exceed the token's limits");
  const payload = encodeClaims(claims);
  const signature = sign(null, delegateSigningInput(last.signature, payload), holderKey);
  return serializeToken([...blocks, { payload, signature }]);
}
