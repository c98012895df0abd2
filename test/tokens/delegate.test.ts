/**
 * Offline delegation (SPEC §5): a holder appends a block for a new holder with equal or narrower
 * scopes, expiry and limits. delegateToken checks narrowing up front; verifyToken checks it again,
 * so a hand-made block that widens, or a block lifted from another token, gains nothing.
 *
 * Only a tenant root that demands proof of possession can start a chain, and a delegated block's id
 * is derived from its signature, never chosen by the delegate.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenError } from '../../src/tokens/error.js';
import { delegatedBlockId, encodeClaims, MAX_BLOCKS, MAX_TOKEN_BYTES, parseToken, serializeToken, type BlockClaims } from '../../src/tokens/format.js';
import { generateKeyPair, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken, mintRootToken } from '../../src/tokens/mint.js';
import { limitsWithin, verifyToken } from '../../src/tokens/verify.js';
import type { Scope } from '../../src/tokens/scopes.js';
import {
  bearerRootClaims,
  delegatedClaims,
  expectTokenError,
  makePlatform,
  NOW_SECONDS,
  platformRootClaims,
  signDelegated,
  signRoot,
  subOf,
  tenantRootClaims,
  thrownBy,
  tokenOf,
  type Platform,
  type RawClaims,
} from './hand-made.js';

/** The shape of a derived block id: `tok-` and 26 lowercase Crockford base32 characters. */
const DERIVED_ID = /^tok-[0-9a-hjkmnp-tv-z]{26}$/;

let platform: Platform;
let alice: KeyPair;
let bob: KeyPair;
let carol: KeyPair;

beforeAll(() => {
  platform = makePlatform();
  alice = generateKeyPair();
  bob = generateKeyPair();
  carol = generateKeyPair();
});

/** A tenant-admin root held by alice, one hour long, limited to 5 VMs and 50 GB, demanding proof of possession. */
function aliceRoot(overrides: RawClaims = {}): string {
  return mintRootToken(
    {
      kid: platform.kid,
      tid: 'acme-corp',
      sub: subOf(alice),
      scp: ['service:tenant-admin'],
      iat: NOW_SECONDS,
      exp: NOW_SECONDS + 3600,
      jti: 'alice-root',
      lim: { max_vms: 5, storage_quota_gb: 50 },
      pop: true,
      ...overrides,
    },
    platform.privateKey,
  );
}

function toBob(overrides: RawClaims = {}): Omit<BlockClaims, 'kid' | 'tid' | 'jti'> {
  return {
    sub: subOf(bob),
    scp: ['tenant:input'] as Scope[],
    iat: NOW_SECONDS,
    exp: NOW_SECONDS + 1800,
    lim: { max_vms: 2, storage_quota_gb: 20 },
    ...overrides,
  };
}

/** Expects `action` to throw a TokenError (malformed) whose reason matches `why`. */
function expectMalformedFor(action: () => unknown, why: RegExp): void {
  const error = thrownBy(action);
  expect(error).toBeInstanceOf(TokenError);
  expect((error as TokenError).code).toBe('malformed');
  expect((error as TokenError).message).toMatch(why);
}

describe('delegateToken', () => {
  it('appends a block that verifies, naming the new holder with the narrower grant', () => {
    const token = delegateToken(aliceRoot(), alice.privateKey, toBob());
    const bobsId = delegatedBlockId(parseToken(token)[1]!.signature);
    const verified = verifyToken(token, platform.options);
    expect(verified).toMatchObject({
      tenantId: 'acme-corp',
      scopes: ['tenant:input'],
      subject: subOf(bob),
      tokenId: bobsId,
      expiresAt: NOW_SECONDS + 1800,
      proofOfPossession: true,
    });
    expect(verified.chain.map((link) => link.jti)).toEqual(['alice-root', bobsId]);
  });

  it('writes exactly the claims it is given into the new block, with no jti, kid or tid', () => {
    const claims = toBob({ pop: false });
    const blocks = parseToken(delegateToken(aliceRoot(), alice.privateKey, claims));
    expect(blocks).toHaveLength(2);
    expect(blocks[1]!.payload).toEqual(encodeClaims(claims));
    expect(blocks[1]!.claims).toEqual(claims);
    expect(blocks[1]!.claims).not.toHaveProperty('jti');
  });

  it('keeps the original blocks byte for byte', () => {
    const root = aliceRoot();
    expect(delegateToken(root, alice.privateKey, toBob()).startsWith(`${root}.`)).toBe(true);
  });

  it('allows an equal grant: the same scopes, expiry and limits', () => {
    const same = toBob({ scp: ['service:tenant-admin'], exp: NOW_SECONDS + 3600, lim: { max_vms: 5, storage_quota_gb: 50 } });
    expect(verifyToken(delegateToken(aliceRoot(), alice.privateKey, same), platform.options).scopes).toEqual(['service:tenant-admin']);
  });

  it('allows scopes implied by the holder’s scopes, such as node:agent under tenant-admin', () => {
    const agent = toBob({ scp: ['node:agent', 'tenant:read'] });
    expect(verifyToken(delegateToken(aliceRoot(), alice.privateKey, agent), platform.options).scopes).toEqual(['node:agent', 'tenant:read']);
  });

  it('allows a limit the parent does not set, and tighter limits than the parent’s', () => {
    const tighter = toBob({ lim: { max_vms: 0, storage_quota_gb: 50, max_vcpus: 8 } });
    expect(verifyToken(delegateToken(aliceRoot(), alice.privateKey, tighter), platform.options).chain[1]!.lim).toEqual(tighter.lim);
  });

  it('refuses a key that is not the current holder with a TypeError', () => {
    expect(() => delegateToken(aliceRoot(), bob.privateKey, toBob())).toThrow(TypeError);
    const bobsToken = delegateToken(aliceRoot(), alice.privateKey, toBob());
    expect(() => delegateToken(bobsToken, alice.privateKey, toBob({ sub: subOf(carol) }))).toThrow(TypeError);
  });

  it('throws a TokenError (widened) for scopes the holder does not have', () => {
    expectTokenError(() => delegateToken(aliceRoot(), alice.privateKey, toBob({ scp: ['service:platform-admin'] })), 'widened');
    const bobsToken = delegateToken(aliceRoot(), alice.privateKey, toBob({ scp: ['tenant:user'] }));
    expectTokenError(() => delegateToken(bobsToken, bob.privateKey, toBob({ sub: subOf(carol), scp: ['tenant:input'] })), 'widened');
  });

  it('throws a TokenError (widened) for an expiry later than the holder’s', () => {
    expectTokenError(() => delegateToken(aliceRoot(), alice.privateKey, toBob({ exp: NOW_SECONDS + 3601 })), 'widened');
  });

  it('throws a TokenError (widened) for a larger limit', () => {
    expectTokenError(() => delegateToken(aliceRoot(), alice.privateKey, toBob({ lim: { max_vms: 6, storage_quota_gb: 50 } })), 'widened');
  });

  it('throws a TokenError (widened) for dropping a limit the holder has', () => {
    expectTokenError(() => delegateToken(aliceRoot(), alice.privateKey, toBob({ lim: { max_vms: 2 } })), 'widened');
    expectTokenError(() => delegateToken(aliceRoot(), alice.privateKey, toBob({ lim: undefined })), 'widened');
  });

  it('throws a TokenError (malformed), not a SyntaxError, when the token to extend is not a token', () => {
    expectTokenError(() => delegateToken('pct1.!!.!!', alice.privateKey, toBob()), 'malformed');
  });
});

describe('limitsWithin', () => {
  it.each([
    [undefined, undefined, true],
    [{ max_vms: 9 }, undefined, true],
    [undefined, {}, true],
    [{ max_vms: 2 }, { max_vms: 2 }, true],
    [{ max_vms: 1, max_vcpus: 64 }, { max_vms: 2 }, true],
    [{ max_vms: 3 }, { max_vms: 2 }, false],
    [undefined, { max_vms: 2 }, false],
    [{}, { max_vms: 2 }, false],
    [{ max_vms: 1 }, { max_vms: 2, max_memory_mb: 1024 }, false],
  ])('child %j within parent %j is %s', (child, parent, expected) => {
    expect(limitsWithin(child, parent)).toBe(expected);
  });
});

describe('hand-made blocks that widen are refused by every verifier', () => {
  /** A root from alice (tenant:input, 1 h, max_vms 2) and one block signed correctly by alice for bob. */
  function widenedToken(child: RawClaims): string {
    const root = signRoot(tenantRootClaims(platform, alice, { scp: ['tenant:input'], lim: { max_vms: 2, storage_quota_gb: 20 } }), platform.privateKey);
    const block = signDelegated(root, delegatedClaims(bob, { lim: { max_vms: 2, storage_quota_gb: 20 }, ...child }), alice.privateKey);
    return tokenOf(root, block);
  }

  it('accepts the unwidened block these cases start from', () => {
    const token = widenedToken({});
    expect(verifyToken(token, platform.options).tokenId).toBe(delegatedBlockId(parseToken(token)[1]!.signature));
  });

  it('throws a TokenError (widened) for a wider scope', () => {
    expectTokenError(() => verifyToken(widenedToken({ scp: ['service:tenant-admin'] }), platform.options), 'widened');
  });

  it('throws a TokenError (widened) for a sibling scope the parent does not imply', () => {
    expectTokenError(() => verifyToken(widenedToken({ scp: ['tenant:read', 'node:agent'] }), platform.options), 'widened');
  });

  it('throws a TokenError (widened) for a later expiry', () => {
    expectTokenError(() => verifyToken(widenedToken({ exp: NOW_SECONDS + 3601 }), platform.options), 'widened');
  });

  it('throws a TokenError (widened) for a larger limit', () => {
    expectTokenError(() => verifyToken(widenedToken({ lim: { max_vms: 3, storage_quota_gb: 20 } }), platform.options), 'widened');
  });

  it('throws a TokenError (widened) for a missing limit', () => {
    expectTokenError(() => verifyToken(widenedToken({ lim: { max_vms: 2 } }), platform.options), 'widened');
  });

  it('throws a TokenError (widened) for missing limits altogether', () => {
    expectTokenError(() => verifyToken(widenedToken({ lim: undefined }), platform.options), 'widened');
  });

  it('throws a TokenError (widened) for a widening deep in the chain, after valid narrowing blocks', () => {
    const bobs = delegateToken(aliceRoot(), alice.privateKey, toBob({ scp: ['tenant:read'] }));
    const blocks = parseToken(bobs);
    const widening = signDelegated(blocks[1]!, { ...delegatedClaims(carol), scp: ['tenant:user'], lim: { max_vms: 1, storage_quota_gb: 1 } }, bob.privateKey);
    expectTokenError(() => verifyToken(serializeToken([...blocks, widening]), platform.options), 'widened');
  });
});

describe('blocks cannot be moved between tokens or within one', () => {
  it('throws a TokenError (bad_signature) for a block spliced from another token of the same holder', () => {
    // Alice holds two roots. She delegates the broad one to bob; that block must not attach to the narrow one.
    const narrow = signRoot(tenantRootClaims(platform, alice, { scp: ['tenant:read'], jti: 'narrow' }), platform.privateKey);
    const broad = signRoot(tenantRootClaims(platform, alice, { scp: ['service:tenant-admin'], jti: 'broad' }), platform.privateKey);
    const fromBroad = signDelegated(broad, delegatedClaims(bob, { scp: ['tenant:read'] }), alice.privateKey);
    expect(verifyToken(tokenOf(broad, fromBroad), platform.options).subject).toBe(subOf(bob));
    expectTokenError(() => verifyToken(tokenOf(narrow, fromBroad), platform.options), 'bad_signature');
  });

  it('throws a TokenError (bad_signature) when another token’s root replaces this token’s root', () => {
    const first = signRoot(tenantRootClaims(platform, alice, { jti: 'first' }), platform.privateKey);
    const second = signRoot(tenantRootClaims(platform, alice, { jti: 'second' }), platform.privateKey);
    const child = signDelegated(first, delegatedClaims(bob), alice.privateKey);
    expectTokenError(() => verifyToken(tokenOf(second, child), platform.options), 'bad_signature');
  });

  it('throws a TokenError (bad_signature) when two delegated blocks swap places', () => {
    const token = delegateToken(
      delegateToken(aliceRoot(), alice.privateKey, toBob({ scp: ['tenant:read'] })),
      bob.privateKey,
      toBob({ sub: subOf(carol), scp: ['tenant:read'], lim: { max_vms: 1, storage_quota_gb: 1 } }),
    );
    const [root, b1, b2] = parseToken(token);
    expectTokenError(() => verifyToken(serializeToken([root!, b2!, b1!]), platform.options), 'bad_signature');
  });

  it('throws a TokenError (bad_signature) when a middle block is removed', () => {
    const token = delegateToken(
      delegateToken(aliceRoot(), alice.privateKey, toBob({ scp: ['tenant:read'] })),
      bob.privateKey,
      toBob({ sub: subOf(carol), scp: ['tenant:read'], lim: { max_vms: 1, storage_quota_gb: 1 } }),
    );
    const [root, , b2] = parseToken(token);
    expectTokenError(() => verifyToken(serializeToken([root!, b2!]), platform.options), 'bad_signature');
  });
});

describe('a delegate cannot recover its delegator’s wider token (truncation)', () => {
  /**
   * Returns the scopes a token grants to whoever merely holds its text: null when verification fails
   * or when it demands proof of possession (which would need the final holder's private key).
   */
  function bearerScopes(token: string): Scope[] | null {
    try {
      const verified = verifyToken(token, platform.options);
      return verified.proofOfPossession ? null : verified.scopes;
    } catch (error) {
      if (error instanceof TokenError) return null;
      throw error;
    }
  }

  it('dropping its own block from a delegated token leaves the parent’s token, which demands the parent holder’s proof of possession', () => {
    // Alice (tenant-admin) delegates tenant:read to bob. Bob holds only his token and his own key.
    const root = aliceRoot();
    const bobsToken = delegateToken(root, alice.privateKey, toBob({ scp: ['tenant:read'] }));
    expect(verifyToken(bobsToken, platform.options)).toMatchObject({ scopes: ['tenant:read'], subject: subOf(bob), proofOfPossession: true });
    const dropped = serializeToken(parseToken(bobsToken).slice(0, -1));
    // What bob cut back to is alice's token byte for byte: a valid token, but held by alice, not by bob.
    expect(dropped).toBe(root);
    const verified = verifyToken(dropped, platform.options);
    expect(verified.scopes).toEqual(['service:tenant-admin']);
    expect(verified.subject).toBe(subOf(alice));
    expect(verified.subject).not.toBe(subOf(bob));
    expect(verified.proofOfPossession).toBe(true);
    // "no delegate can widen what it was given" (SPEC §5): without alice's private key the text grants nothing.
    expect(bearerScopes(dropped)).toBeNull();
  });

  it('a bearer root (no pop) cannot be made into a chain by hand either, so there is no bearer parent to cut back to', () => {
    const root = signRoot(bearerRootClaims(platform, alice), platform.privateKey);
    expect(bearerScopes(tokenOf(root))).toEqual(['service:tenant-admin']);
    const handMade = tokenOf(root, signDelegated(root, delegatedClaims(bob), alice.privateKey));
    expectMalformedFor(() => verifyToken(handMade, platform.options), /root that demands proof of possession/);
  });
});

describe('delegation needs a root that demands proof of possession', () => {
  it('delegateToken throws a TokenError (malformed) for a root without pop', () => {
    expectMalformedFor(() => delegateToken(aliceRoot({ pop: undefined }), alice.privateKey, toBob()), /proof of possession/);
  });

  it('delegateToken throws a TokenError (malformed) for a root with pop set to false', () => {
    expectMalformedFor(() => delegateToken(aliceRoot({ pop: false }), alice.privateKey, toBob()), /proof of possession/);
  });

  it('delegateToken throws a TokenError (malformed) when extending a hand-made chain whose root lacks pop, even if a later block sets it', () => {
    const root = signRoot(bearerRootClaims(platform, alice), platform.privateKey);
    const handMade = tokenOf(root, signDelegated(root, delegatedClaims(bob, { pop: true }), alice.privateKey));
    expectMalformedFor(
      () => delegateToken(handMade, bob.privateKey, toBob({ sub: subOf(carol), scp: ['tenant:read'], exp: NOW_SECONDS + 60, lim: undefined })),
      /proof of possession/,
    );
  });

  it('verifyToken throws a TokenError (malformed) for a three-block chain, correctly signed throughout, whose root lacks pop', () => {
    const root = signRoot(bearerRootClaims(platform, alice), platform.privateKey);
    const first = signDelegated(root, delegatedClaims(bob), alice.privateKey);
    const second = signDelegated(first, delegatedClaims(carol, { exp: NOW_SECONDS + 300 }), bob.privateKey);
    expectMalformedFor(() => verifyToken(tokenOf(root, first, second), platform.options), /root that demands proof of possession/);
    // The same blocks on a pop root verify, so pop is the only thing wrong above.
    const popRoot = signRoot(tenantRootClaims(platform, alice), platform.privateKey);
    const popFirst = signDelegated(popRoot, delegatedClaims(bob), alice.privateKey);
    const popSecond = signDelegated(popFirst, delegatedClaims(carol, { exp: NOW_SECONDS + 300 }), bob.privateKey);
    expect(verifyToken(tokenOf(popRoot, popFirst, popSecond), platform.options).subject).toBe(subOf(carol));
  });
});

describe('platform tokens cannot be delegated', () => {
  function platformRoot(overrides: RawClaims = {}): string {
    return tokenOf(signRoot(platformRootClaims(platform, alice, overrides), platform.privateKey));
  }

  it('a platform root on its own verifies, tenantless, so the refusals below are about delegation', () => {
    expect(verifyToken(platformRoot(), platform.options)).toMatchObject({ tenantId: null, scopes: ['service:platform-admin'], subject: subOf(alice) });
  });

  it('verifyToken throws a TokenError (malformed) for a platform root (with pop) followed by a correctly signed block', () => {
    const root = signRoot(platformRootClaims(platform, alice), platform.privateKey);
    for (const scp of [['tenant:read'], ['service:tenant-admin'], ['service:platform-admin']]) {
      const token = tokenOf(root, signDelegated(root, delegatedClaims(bob, { scp }), alice.privateKey));
      expectMalformedFor(() => verifyToken(token, platform.options), /platform tokens cannot be delegated/);
    }
  });

  it('delegateToken throws a TokenError (malformed) for a platform root, with or without pop', () => {
    for (const pop of [true, undefined]) {
      const root = mintRootToken(
        { kid: platform.kid, sub: subOf(alice), scp: ['service:platform-admin'], iat: NOW_SECONDS, exp: NOW_SECONDS + 3600, jti: 'platform', ...(pop ? { pop } : {}) },
        platform.privateKey,
      );
      expect(verifyToken(root, platform.options).tenantId).toBeNull();
      expectMalformedFor(() => delegateToken(root, alice.privateKey, toBob({ scp: ['tenant:read'], lim: undefined })), /platform tokens cannot be delegated/);
    }
  });
});

describe('delegated block ids are derived from the signature', () => {
  it('each delegated block’s id is delegatedBlockId of its signature, in the tok- form, and the token’s id is the last one', () => {
    const toBobToken = delegateToken(aliceRoot(), alice.privateKey, toBob({ scp: ['tenant:read'] }));
    const toCarol = delegateToken(toBobToken, bob.privateKey, toBob({ sub: subOf(carol), scp: ['tenant:read'], lim: { max_vms: 1, storage_quota_gb: 1 } }));
    const blocks = parseToken(toCarol);
    const verified = verifyToken(toCarol, platform.options);
    const ids = verified.chain.map((link) => link.jti);
    expect(ids).toEqual(['alice-root', delegatedBlockId(blocks[1]!.signature), delegatedBlockId(blocks[2]!.signature)]);
    expect(ids[1]).toMatch(DERIVED_ID);
    expect(ids[2]).toMatch(DERIVED_ID);
    expect(ids[1]).not.toBe(ids[2]);
    expect(verified.tokenId).toBe(ids[2]);
    // Bob's token, verified on its own, has the same id for his block as the longer chain reports.
    expect(verifyToken(toBobToken, platform.options).tokenId).toBe(ids[1]);
  });

  it('delegatedBlockId is tok- and the first 130 bits, in Crockford base32, of SHA-256 over a domain prefix and the signature', () => {
    // Vectors computed outside this code base (Python hashlib, big-endian bit order, alphabet 0-9a-z without i l o u).
    expect(delegatedBlockId(Buffer.alloc(64, 0x00))).toBe('tok-yc01ry1kjpdn0a238pn2b1ah1k');
    expect(delegatedBlockId(Buffer.alloc(64, 0xff))).toBe('tok-50nxfwyrerc64mtd116y7ca40a');
    expect(delegatedBlockId(Buffer.from(Array.from({ length: 64 }, (_, i) => i)))).toBe('tok-bhe1291pd4fmhz35nemnme3z57');
  });

  it('delegatedBlockId agrees with a reference implementation for any signature, and always has the tok- form', () => {
    const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
    const reference = (signature: Buffer): string => {
      const digest = createHash('sha256').update('ppn-token-v1/block-id\n').update(signature).digest();
      const top = BigInt(`0x${digest.toString('hex')}`) >> 126n;
      return `tok-${Array.from({ length: 26 }, (_, i) => alphabet[Number((top >> BigInt(5 * (25 - i))) & 31n)]).join('')}`;
    };
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (bytes) => {
        const id = delegatedBlockId(Buffer.from(bytes));
        expect(id).toBe(reference(Buffer.from(bytes)));
        expect(id).toMatch(DERIVED_ID);
      }),
      { numRuns: 300 },
    );
  });

  it('a delegate cannot choose its block’s id: a hand-made block claiming any id is malformed', () => {
    const root = signRoot(tenantRootClaims(platform, alice), platform.privateKey);
    const honest = signDelegated(root, delegatedClaims(bob), alice.privateKey);
    const honestId = delegatedBlockId(honest.signature);
    expect(verifyToken(tokenOf(root, honest), platform.options).tokenId).toBe(honestId);
    const claimed = fc.oneof(
      // Ids worth stealing: the root's, the honest block's, another token's.
      fc.constantFrom('root-jti', 'alice-root', honestId, delegatedBlockId(Buffer.alloc(64, 7))),
      fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'), minLength: 1, maxLength: 64 }),
      fc.string(),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(claimed, (jti) => {
        const block = signDelegated(root, delegatedClaims(bob, { jti }), alice.privateKey);
        expectMalformedFor(() => verifyToken(tokenOf(root, block), platform.options), /^block 1: only block 0 may carry kid, tid or jti$/);
      }),
      { numRuns: 200 },
    );
  });
});

describe('delegateToken never hands back a token that every verifier refuses (bounds)', () => {
  function chainOf(length: number, claims: RawClaims = {}, root = aliceRoot()): { token: string; holder: KeyPair } {
    let token = root;
    let holder = alice;
    for (let i = 1; i < length; i++) {
      const next = generateKeyPair();
      token = delegateToken(token, holder.privateKey, toBob({ sub: subOf(next), ...claims }));
      holder = next;
    }
    return { token, holder };
  }

  it('throws a TokenError (too_many_blocks) rather than append a ninth block', () => {
    const { token, holder } = chainOf(MAX_BLOCKS);
    expect(verifyToken(token, platform.options).chain).toHaveLength(MAX_BLOCKS);
    expectTokenError(() => delegateToken(token, holder.privateKey, toBob({ sub: subOf(carol) })), 'too_many_blocks');
  });

  it('throws a RangeError for a block whose exp equals its iat', () => {
    const error = thrownBy(() => delegateToken(aliceRoot(), alice.privateKey, toBob({ iat: NOW_SECONDS + 100, exp: NOW_SECONDS + 100 })));
    expect(error).toBeInstanceOf(RangeError);
  });

  it('throws a RangeError for a block whose exp is before its iat', () => {
    const error = thrownBy(() => delegateToken(aliceRoot(), alice.privateKey, toBob({ iat: NOW_SECONDS + 100, exp: NOW_SECONDS + 99 })));
    expect(error).toBeInstanceOf(RangeError);
    // One second later is fine: the bound is exactly exp > iat.
    expect(verifyToken(delegateToken(aliceRoot(), alice.privateKey, toBob({ iat: NOW_SECONDS + 99, exp: NOW_SECONDS + 100 })), platform.options).expiresAt).toBe(
      NOW_SECONDS + 100,
    );
  });

  it('throws a TokenError (too_large) rather than grow a token past 4096 bytes', () => {
    // Seven valid blocks with long (but legal) claims fit in 4096 bytes; an eighth such block does not.
    const scp: Scope[] = ['service:tenant-admin', 'tenant:input', 'tenant:user', 'tenant:read', 'node:agent'];
    const lim = {
      max_vms: Number.MAX_SAFE_INTEGER,
      storage_quota_gb: Number.MAX_SAFE_INTEGER,
      max_vcpus: Number.MAX_SAFE_INTEGER,
      max_memory_mb: Number.MAX_SAFE_INTEGER,
    };
    const root = aliceRoot({ tid: `a${'b'.repeat(62)}`, jti: 'j'.repeat(64), scp, lim });
    const { token, holder } = chainOf(MAX_BLOCKS - 1, { scp, lim, exp: NOW_SECONDS + 3600, pop: false }, root);
    expect(Buffer.byteLength(token)).toBeLessThanOrEqual(MAX_TOKEN_BYTES);
    expect(verifyToken(token, platform.options).chain).toHaveLength(MAX_BLOCKS - 1);
    const eighth = toBob({ sub: subOf(carol), scp, lim, exp: NOW_SECONDS + 3600, pop: false });
    const wouldBe = serializeToken([...parseToken(token), { payload: encodeClaims(eighth), signature: Buffer.alloc(64) }]);
    expect(Buffer.byteLength(wouldBe)).toBeGreaterThan(MAX_TOKEN_BYTES);
    expectTokenError(() => delegateToken(token, holder.privateKey, eighth), 'too_large');
  });
});

describe('a delegated block’s name and description', () => {
  it('delegateToken writes nam and dsc into the new block, and verifyToken hands them on', () => {
    const token = delegateToken(aliceRoot(), alice.privateKey, toBob({ nam: 'bob laptop', dsc: 'Bob’s dev machine, until March' }));
    expect(parseToken(token)[1]!.claims).toMatchObject({ nam: 'bob laptop', dsc: 'Bob’s dev machine, until March' });
    expect(verifyToken(token, platform.options).chain[1]).toMatchObject({ nam: 'bob laptop', dsc: 'Bob’s dev machine, until March' });
  });

  it('the name is covered by the block’s signature: a block whose name is changed afterwards fails verification (bad_signature)', () => {
    const [root, child] = parseToken(delegateToken(aliceRoot(), alice.privateKey, toBob({ nam: 'bob laptop' })));
    for (const claims of [
      { ...child!.claims, nam: 'alice laptop' },
      { ...child!.claims, nam: undefined },
      { ...child!.claims, dsc: 'added later' },
    ]) {
      const renamed = { payload: encodeClaims(claims), signature: child!.signature };
      expectTokenError(() => verifyToken(serializeToken([root!, renamed]), platform.options), 'bad_signature');
    }
  });

  it('a name is not inherited: a block below a named one has none unless it is given one', () => {
    const named = delegateToken(aliceRoot(), alice.privateKey, toBob({ nam: 'bob laptop' }));
    const below = delegateToken(named, bob.privateKey, toBob({ sub: subOf(carol), scp: ['tenant:read'] }));
    expect(verifyToken(below, platform.options).chain.map((link) => link.nam)).toEqual([undefined, 'bob laptop', undefined]);
  });

  it('delegateToken throws a RangeError for a name or description that is not printable text of the allowed length', () => {
    for (const claims of [{ nam: '' }, { nam: 'n'.repeat(65) }, { nam: 'a\nb' }, { dsc: 'd'.repeat(257) }, { dsc: 'a\u202eb' }]) {
      expect(thrownBy(() => delegateToken(aliceRoot(), alice.privateKey, toBob(claims)))).toBeInstanceOf(RangeError);
    }
  });

  it('mintRootToken throws a TypeError for a root with nam or dsc', () => {
    expect(thrownBy(() => aliceRoot({ nam: 'root' }))).toBeInstanceOf(TypeError);
    expect(thrownBy(() => aliceRoot({ dsc: 'root' }))).toBeInstanceOf(TypeError);
  });
});
