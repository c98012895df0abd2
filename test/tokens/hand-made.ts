/**
 * Building tokens by hand for the token-core tests: every block is signed correctly (platform key for
 * block 0, the parent's holder key for the rest), so a test that changes one claim is testing that
 * claim and nothing else. Claims are plain records, so they can be wrong in any way a test needs.
 *
 * The defaults follow the current format: a tenant root demands proof of possession (`pop: true`), as
 * every root of a multi-block token must, and a delegated block carries no `jti` (its id is derived
 * from its signature). The variants the format now refuses are built with overrides:
 * `bearerRootClaims` (a root without pop), `tenantRootClaims(.., { pop: false })`, or
 * `delegatedClaims(.., { jti: 'child-jti' })`.
 */
import { createPublicKey, sign, type KeyObject } from 'node:crypto';
import { expect } from 'vitest';
import { TokenError, type TokenErrorCode } from '../../src/tokens/error.js';
import { delegateSigningInput, rootSigningInput, serializeToken } from '../../src/tokens/format.js';
import { encodeBase64url, generateKeyPair, keyId, rawPublicKey, type KeyPair } from '../../src/tokens/keys.js';
import type { VerifyOptions } from '../../src/tokens/verify.js';

export type RawClaims = Record<string, unknown>;
export interface SignedBlock {
  payload: Buffer;
  signature: Buffer;
}

/** A fixed instant for tests: 2023-11-14T22:13:20Z. */
export const NOW_SECONDS = 1_700_000_000;
export const NOW_MS = NOW_SECONDS * 1000;

export interface Platform extends KeyPair {
  kid: string;
  options: VerifyOptions;
}

export function makePlatform(): Platform {
  const pair = generateKeyPair();
  const kid = keyId(pair.publicKey);
  return { ...pair, kid, options: { platformKey: (k) => (k === kid ? pair.publicKey : undefined), now: NOW_MS } };
}

/** The holder name (`sub`) of a key: its raw public key in base64url. */
export function subOf(key: KeyObject | KeyPair): string {
  const object = 'publicKey' in key ? key.publicKey : createPublicKey(key);
  return encodeBase64url(rawPublicKey(object));
}

/** Encodes claims as JSON bytes; keys whose value is undefined are left out. */
export function payloadOf(claims: RawClaims): Buffer {
  return Buffer.from(JSON.stringify(claims));
}

export function signRootPayload(payload: Buffer, platformKey: KeyObject): SignedBlock {
  return { payload, signature: sign(null, rootSigningInput(payload), platformKey) };
}

export function signRoot(claims: RawClaims, platformKey: KeyObject): SignedBlock {
  return signRootPayload(payloadOf(claims), platformKey);
}

export function signDelegated(parent: SignedBlock, claims: RawClaims, holderKey: KeyObject): SignedBlock {
  const payload = payloadOf(claims);
  return { payload, signature: sign(null, delegateSigningInput(parent.signature, payload), holderKey) };
}

export function tokenOf(...blocks: SignedBlock[]): string {
  return serializeToken(blocks);
}

/**
 * Valid tenant root claims held by `holder`, one hour long from NOW_SECONDS, demanding proof of
 * possession so that a delegation chain may be built on them.
 */
export function tenantRootClaims(platform: Platform, holder: KeyPair, overrides: RawClaims = {}): RawClaims {
  return {
    kid: platform.kid,
    tid: 'acme-corp',
    sub: subOf(holder),
    scp: ['service:tenant-admin'],
    iat: NOW_SECONDS,
    exp: NOW_SECONDS + 3600,
    jti: 'root-jti',
    pop: true,
    ...overrides,
  };
}

/** Tenant root claims without `pop`: a valid bearer token alone, but no valid chain can start from it. */
export function bearerRootClaims(platform: Platform, holder: KeyPair, overrides: RawClaims = {}): RawClaims {
  return tenantRootClaims(platform, holder, { pop: undefined, ...overrides });
}

/** Platform-admin root claims (no tid), with pop so that only the missing tenant is wrong in a chain. */
export function platformRootClaims(platform: Platform, holder: KeyPair, overrides: RawClaims = {}): RawClaims {
  return tenantRootClaims(platform, holder, { tid: undefined, scp: ['service:platform-admin'], jti: 'platform-jti', ...overrides });
}

/** Valid delegated claims held by `holder`, narrower than tenantRootClaims; no jti, kid or tid. */
export function delegatedClaims(holder: KeyPair, overrides: RawClaims = {}): RawClaims {
  return {
    sub: subOf(holder),
    scp: ['tenant:read'],
    iat: NOW_SECONDS,
    exp: NOW_SECONDS + 600,
    ...overrides,
  };
}

/** Runs `action` and returns what it threw; fails the test when it did not throw. */
export function thrownBy(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw, but the call returned normally');
}

/** Asserts that `action` throws a TokenError with `code`, and nothing else (no SyntaxError, no TypeError). */
export function expectTokenError(action: () => unknown, code: TokenErrorCode): void {
  const error = thrownBy(action);
  expect(error).toBeInstanceOf(TokenError);
  expect((error as TokenError).code).toBe(code);
}
