/**
 * verifyToken on well-formed tokens (SPEC §5): what a verified token says, which platform keys sign,
 * the clock (injected, never slept on), and signatures checked block by block.
 */
import { sign } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { delegatedBlockId, delegateSigningInput, MAX_BLOCKS, parseToken, rootSigningInput, type BlockClaims } from '../../src/tokens/format.js';
import { buildKeyring } from '../../src/tokens/keyring.js';
import { generateKeyPair, keyId, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken, mintRootToken } from '../../src/tokens/mint.js';
import { assertTokenCurrent, verifyToken, type VerifyOptions } from '../../src/tokens/verify.js';
import {
  bearerRootClaims,
  delegatedClaims,
  expectTokenError,
  makePlatform,
  NOW_MS,
  NOW_SECONDS,
  payloadOf,
  signDelegated,
  signRoot,
  subOf,
  tenantRootClaims,
  tokenOf,
  type Platform,
} from './hand-made.js';

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

/** A tenant-admin root held by alice, one hour long; a bearer token unless `pop: true` is passed, as every chain needs. */
function aliceRoot(overrides: Partial<BlockClaims> = {}, platformKey = platform.privateKey): string {
  return mintRootToken(
    {
      kid: platform.kid,
      tid: 'acme-corp',
      sub: subOf(alice),
      scp: ['service:tenant-admin'],
      iat: NOW_SECONDS,
      exp: NOW_SECONDS + 3600,
      jti: 'alice-root',
      ...overrides,
    },
    platformKey,
  );
}

describe('a verified root token', () => {
  it('reports tenant, scopes, subject, id, expiry, proof-of-possession and a one-link chain', () => {
    const verified = verifyToken(aliceRoot({ lim: { max_vms: 5 } }), platform.options);
    expect(verified).toEqual({
      rootKid: platform.kid,
      tenantId: 'acme-corp',
      scopes: ['service:tenant-admin'],
      subject: subOf(alice),
      tokenId: 'alice-root',
      expiresAt: NOW_SECONDS + 3600,
      proofOfPossession: false,
      chain: [{ jti: 'alice-root', sub: subOf(alice), scp: ['service:tenant-admin'], exp: NOW_SECONDS + 3600, lim: { max_vms: 5 } }],
    });
  });

  it('has a null tenant for a platform-admin token', () => {
    const verified = verifyToken(aliceRoot({ tid: undefined, scp: ['service:platform-admin'] }), platform.options);
    expect(verified.tenantId).toBeNull();
    expect(verified.scopes).toEqual(['service:platform-admin']);
  });

  it("has a null tenant for a shared fleet node's token: node:agent alone, without a tenant", () => {
    const verified = verifyToken(aliceRoot({ tid: undefined, scp: ['node:agent'], pop: true }), platform.options);
    expect(verified.tenantId).toBeNull();
    expect(verified.scopes).toEqual(['node:agent']);
  });

  it('throws a TokenError (malformed) for a tenantless root with any other scope beside or instead of node:agent', () => {
    for (const scp of [['tenant:read'], ['service:tenant-admin'], ['node:agent', 'tenant:read']] as const) {
      expectTokenError(() => verifyToken(aliceRoot({ tid: undefined, scp: [...scp] }), platform.options), 'malformed');
    }
  });

  it("refuses to delegate a shared node's token (malformed), as any tenantless token", () => {
    const shared = aliceRoot({ tid: undefined, scp: ['node:agent'], pop: true });
    expectTokenError(() => delegateToken(shared, alice.privateKey, { sub: subOf(bob), scp: ['node:agent'], iat: NOW_SECONDS, exp: NOW_SECONDS + 60 }), 'malformed');
  });

  it('leaves lim out of a chain link whose block sets none', () => {
    expect(verifyToken(aliceRoot(), platform.options).chain[0]).not.toHaveProperty('lim');
  });

  it('demands proof of possession when the root sets pop', () => {
    expect(verifyToken(aliceRoot({ pop: true }), platform.options).proofOfPossession).toBe(true);
    expect(verifyToken(aliceRoot({ pop: false }), platform.options).proofOfPossession).toBe(false);
  });
});

describe('mintRootToken', () => {
  it('refuses claims without kid with a TypeError (a programmer error)', () => {
    expect(() => mintRootToken({ sub: subOf(alice), scp: ['tenant:read'], iat: NOW_SECONDS, exp: NOW_SECONDS + 1, jti: 'x' }, platform.privateKey)).toThrow(TypeError);
  });
});

describe('platform keys', () => {
  it('verifies tokens signed by an older key still in the ring after a rotation, and signs new ones with the active key', () => {
    const oldKey = generateKeyPair();
    const newKey = generateKeyPair();
    const oldKid = keyId(oldKey.publicKey);
    const newKid = keyId(newKey.publicKey);
    const before = buildKeyring([oldKey.privateKey], oldKid);
    const oldToken = aliceRoot({ kid: before.activeKid }, before.activeKey);
    const after = buildKeyring([oldKey.privateKey, newKey.privateKey], newKid);
    expect(after.activeKid).toBe(newKid);
    expect(after.activeKey).toBe(newKey.privateKey);
    const options: VerifyOptions = { platformKey: (kid) => after.publicKey(kid), now: NOW_MS };
    expect(verifyToken(oldToken, options).tokenId).toBe('alice-root');
    const newToken = mintRootToken(
      { kid: after.activeKid, tid: 'acme-corp', sub: subOf(bob), scp: ['tenant:read'], iat: NOW_SECONDS, exp: NOW_SECONDS + 60, jti: 'new' },
      after.activeKey,
    );
    expect(verifyToken(newToken, options).tokenId).toBe('new');
  });

  it('throws a TokenError (unknown_key) once the old key is retired from the ring', () => {
    const oldKey = generateKeyPair();
    const newKey = generateKeyPair();
    const oldToken = aliceRoot({ kid: keyId(oldKey.publicKey) }, oldKey.privateKey);
    expect(verifyToken(oldToken, { platformKey: () => oldKey.publicKey, now: NOW_MS }).tokenId).toBe('alice-root');
    const retired = buildKeyring([newKey.privateKey], keyId(newKey.publicKey));
    expect(retired.publicKey(keyId(oldKey.publicKey))).toBeUndefined();
    expectTokenError(() => verifyToken(oldToken, { platformKey: (kid) => retired.publicKey(kid), now: NOW_MS }), 'unknown_key');
  });

  it('buildKeyring refuses an active kid that is not in the ring with a RangeError', () => {
    expect(() => buildKeyring([generateKeyPair().privateKey], 'not-in-ring')).toThrow(RangeError);
  });

  it('throws a TokenError (bad_signature) when the kid names a key that did not sign the block', () => {
    const other = generateKeyPair();
    const options: VerifyOptions = { platformKey: () => other.publicKey, now: NOW_MS };
    expectTokenError(() => verifyToken(aliceRoot(), options), 'bad_signature');
  });
});

describe('the clock', () => {
  it('accepts a token one millisecond before expiry and refuses it (expired) at the expiry instant', () => {
    const token = aliceRoot();
    expect(() => verifyToken(token, { ...platform.options, now: (NOW_SECONDS + 3600) * 1000 - 1 })).not.toThrow();
    expectTokenError(() => verifyToken(token, { ...platform.options, now: (NOW_SECONDS + 3600) * 1000 }), 'expired');
  });

  it('throws a TokenError (expired) when a delegated block has expired though the root has not', () => {
    const token = delegateToken(aliceRoot({ pop: true }), alice.privateKey, {
      sub: subOf(bob),
      scp: ['tenant:read'],
      iat: NOW_SECONDS,
      exp: NOW_SECONDS + 10,
    });
    expect(verifyToken(token, platform.options).expiresAt).toBe(NOW_SECONDS + 10);
    expectTokenError(() => verifyToken(token, { ...platform.options, now: (NOW_SECONDS + 10) * 1000 }), 'expired');
  });

  it('assertTokenCurrent refuses a cached verified token once its expiry passes', () => {
    const verified = verifyToken(aliceRoot(), platform.options);
    expect(() => assertTokenCurrent(verified, NOW_MS + 1000)).not.toThrow();
    expectTokenError(() => assertTokenCurrent(verified, (NOW_SECONDS + 3600) * 1000), 'expired');
  });

  it('assertTokenCurrent refuses an issued-at more than 60 s ahead of now (not_yet_valid)', () => {
    const verified = verifyToken(aliceRoot(), platform.options);
    expect(() => assertTokenCurrent(verified, NOW_MS, NOW_SECONDS + 60)).not.toThrow();
    expectTokenError(() => assertTokenCurrent(verified, NOW_MS, NOW_SECONDS + 61), 'not_yet_valid');
  });
});

describe('a verified delegation chain', () => {
  it('reports the last block as the token and every block in the chain, under the root tenant', () => {
    const toBob = delegateToken(aliceRoot({ lim: { max_vms: 5 }, pop: true }), alice.privateKey, {
      sub: subOf(bob),
      scp: ['tenant:input'],
      iat: NOW_SECONDS,
      exp: NOW_SECONDS + 1800,
      lim: { max_vms: 2 },
    });
    const toCarol = delegateToken(toBob, bob.privateKey, {
      sub: subOf(carol),
      scp: ['tenant:read'],
      iat: NOW_SECONDS,
      exp: NOW_SECONDS + 900,
      lim: { max_vms: 1 },
    });
    const [, bobBlock, carolBlock] = parseToken(toCarol);
    const bobId = delegatedBlockId(bobBlock!.signature);
    const carolId = delegatedBlockId(carolBlock!.signature);
    const verified = verifyToken(toCarol, platform.options);
    expect(verified).toEqual({
      rootKid: platform.kid,
      tenantId: 'acme-corp',
      scopes: ['tenant:read'],
      subject: subOf(carol),
      tokenId: carolId,
      expiresAt: NOW_SECONDS + 900,
      proofOfPossession: true,
      chain: [
        { jti: 'alice-root', sub: subOf(alice), scp: ['service:tenant-admin'], exp: NOW_SECONDS + 3600, lim: { max_vms: 5 } },
        { jti: bobId, sub: subOf(bob), scp: ['tenant:input'], exp: NOW_SECONDS + 1800, lim: { max_vms: 2 } },
        { jti: carolId, sub: subOf(carol), scp: ['tenant:read'], exp: NOW_SECONDS + 900, lim: { max_vms: 1 } },
      ],
    });
    expect(new Set([bobId, carolId, 'alice-root']).size).toBe(3);
  });

  it('demands proof of possession from the root on, and a later block cannot turn it off', () => {
    const toBob = delegateToken(aliceRoot({ pop: true }), alice.privateKey, {
      sub: subOf(bob),
      scp: ['tenant:read'],
      iat: NOW_SECONDS,
      exp: NOW_SECONDS + 60,
      pop: false,
    });
    expect(verifyToken(toBob, platform.options).proofOfPossession).toBe(true);
    const toCarol = delegateToken(toBob, bob.privateKey, { sub: subOf(carol), scp: ['tenant:read'], iat: NOW_SECONDS, exp: NOW_SECONDS + 30, pop: false });
    expect(verifyToken(toCarol, platform.options)).toMatchObject({ subject: subOf(carol), proofOfPossession: true });
  });

  it('throws a TokenError (malformed) for a chain whose root lacks pop, even when a later block sets it', () => {
    // Before roots had to demand pop, a block setting pop mid-chain was accepted; now the chain itself is refused.
    const root = signRoot(bearerRootClaims(platform, alice), platform.privateKey);
    const midChainPop = signDelegated(root, delegatedClaims(bob, { pop: true }), alice.privateKey);
    expectTokenError(() => verifyToken(tokenOf(root, midChainPop), platform.options), 'malformed');
  });

  it('verifies a chain of exactly 8 blocks', () => {
    let token = aliceRoot({ scp: ['tenant:read'], pop: true });
    let holder = alice;
    for (let i = 1; i < MAX_BLOCKS; i++) {
      const next = generateKeyPair();
      token = delegateToken(token, holder.privateKey, { sub: subOf(next), scp: ['tenant:read'], iat: NOW_SECONDS, exp: NOW_SECONDS + 3600 - i });
      holder = next;
    }
    const verified = verifyToken(token, platform.options);
    expect(verified.chain).toHaveLength(MAX_BLOCKS);
    expect(verified.subject).toBe(subOf(holder));
    const blocks = parseToken(token);
    expect(verified.chain.map((link) => link.jti)).toEqual(blocks.map((block, i) => (i === 0 ? 'alice-root' : delegatedBlockId(block.signature))));
    expect(new Set(verified.chain.map((link) => link.jti)).size).toBe(MAX_BLOCKS);
  });

  it('throws a TokenError (bad_signature) when a block is signed by its own new holder instead of the previous holder', () => {
    const root = signRoot(tenantRootClaims(platform, alice), platform.privateKey);
    const selfSigned = signDelegated(root, delegatedClaims(bob), bob.privateKey);
    expectTokenError(() => verifyToken(tokenOf(root, selfSigned), platform.options), 'bad_signature');
  });

  it('throws a TokenError (bad_signature) when a delegated block is signed by the platform key instead of the holder', () => {
    const root = signRoot(tenantRootClaims(platform, alice), platform.privateKey);
    const byPlatform = signDelegated(root, delegatedClaims(bob), platform.privateKey);
    expectTokenError(() => verifyToken(tokenOf(root, byPlatform), platform.options), 'bad_signature');
  });
});

describe('domain separation between root and delegated signatures', () => {
  it('a block signed by the platform key over the delegate input does not verify as a root block', () => {
    const payload = payloadOf(tenantRootClaims(platform, alice));
    const signature = sign(null, delegateSigningInput(Buffer.alloc(0), payload), platform.privateKey);
    expectTokenError(() => verifyToken(tokenOf({ payload, signature }), platform.options), 'bad_signature');
  });

  it('a platform signature over the bare payload, without the domain prefix, does not verify', () => {
    const payload = payloadOf(tenantRootClaims(platform, alice));
    const signature = sign(null, payload, platform.privateKey);
    expectTokenError(() => verifyToken(tokenOf({ payload, signature }), platform.options), 'bad_signature');
  });

  it('a holder signature over the root input does not verify as a delegated block', () => {
    const root = signRoot(tenantRootClaims(platform, alice), platform.privateKey);
    const payload = payloadOf(delegatedClaims(bob));
    const signature = sign(null, rootSigningInput(payload), alice.privateKey);
    expectTokenError(() => verifyToken(tokenOf(root, { payload, signature }), platform.options), 'bad_signature');
  });
});

describe('holder keys that are not valid curve points', () => {
  it('throws a TokenError (bad_signature), not a crypto error, when a root sub is 32 bytes that decode to no point', () => {
    // 0xff...ff encodes y >= p, which no Ed25519 public key has (and it is not on the small-order list);
    // the platform will sign any 32 bytes it is given. The root demands pop, so only the key is wrong.
    const root = signRoot(tenantRootClaims(platform, alice, { sub: Buffer.alloc(32, 0xff).toString('base64url') }), platform.privateKey);
    expect(parseToken(tokenOf(root))[0]!.claims.pop).toBe(true);
    const child = { payload: payloadOf(delegatedClaims(bob)), signature: Buffer.alloc(64, 1) };
    expectTokenError(() => verifyToken(tokenOf(root, child), platform.options), 'bad_signature');
  });
});
