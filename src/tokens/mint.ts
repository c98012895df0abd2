/** Making tokens: root tokens signed by a platform key, and offline delegation by a holder. */
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { TokenError } from './error.js';
import {
  delegateSigningInput,
  encodeClaims,
  isPrintableText,
  MAX_BLOCKS,
  MAX_DESCRIPTION_CHARS,
  MAX_NAME_CHARS,
  MAX_TOKEN_BYTES,
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
  if (claims.nam !== undefined || claims.dsc !== undefined) throw new TypeError("a root block carries no nam or dsc: an issued token's name is kept in its record");
  const payload = encodeClaims(claims);
  const signature = sign(null, rootSigningInput(payload), platformKey);
  return serializeToken([{ payload, signature }]);
}

/**
 * Appends a block to `token`, signed by the current holder's private key. The new block may only
 * narrow: its scopes, expiry and limits are checked here so a holder learns at once, and again by
 * every verifier, so a hand-made block gains nothing.
 */
export function delegateToken(token: string, holderKey: KeyObject, claims: Omit<BlockClaims, 'kid' | 'tid' | 'jti'>): string {
  const blocks = parseToken(token);
  const root = blocks[0]!;
  const last = blocks[blocks.length - 1]!;
  if (blocks.length >= MAX_BLOCKS) throw new TokenError('too_many_blocks', `a token has at most ${MAX_BLOCKS} blocks`);
  if (root.claims.tid === undefined) throw new TokenError('malformed', 'platform tokens cannot be delegated');
  if (root.claims.pop !== true) {
    throw new TokenError('malformed', 'only a token whose root demands proof of possession (pop) can be delegated');
  }
  if (claims.exp <= claims.iat) throw new RangeError('exp must be after iat');
  if (claims.nam !== undefined && !isPrintableText(claims.nam, MAX_NAME_CHARS)) {
    throw new RangeError(`nam must be printable text of 1 to ${MAX_NAME_CHARS} characters`);
  }
  if (claims.dsc !== undefined && !isPrintableText(claims.dsc, MAX_DESCRIPTION_CHARS)) {
    throw new RangeError(`dsc must be printable text of 1 to ${MAX_DESCRIPTION_CHARS} characters`);
  }
  if (encodeBase64url(rawPublicKey(createPublicKey(holderKey))) !== last.claims.sub) {
    throw new TypeError('the key given is not the holder of this token');
  }
  if (!scopesWithin(claims.scp, last.claims.scp)) throw new TokenError('widened', "delegated scopes exceed the token's scopes");
  if (claims.exp > last.claims.exp) throw new TokenError('widened', "delegated expiry is later than the token's expiry");
  if (!limitsWithin(claims.lim, last.claims.lim)) throw new TokenError('widened', "delegated limits exceed the token's limits");
  const payload = encodeClaims(claims);
  const signature = sign(null, delegateSigningInput(last.signature, payload), holderKey);
  const delegated = serializeToken([...blocks, { payload, signature }]);
  if (Buffer.byteLength(delegated) > MAX_TOKEN_BYTES) throw new TokenError('too_large', `the token would exceed ${MAX_TOKEN_BYTES} bytes`);
  return delegated;
}
