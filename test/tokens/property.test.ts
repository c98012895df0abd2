/**
 * Properties of the token core over random tokens (SPEC §5): minting round-trips, delegation only
 * narrows, any tampering ends in a TokenError, widening and splicing are caught by the verifier.
 * Chains start from tenant roots that demand proof of possession, the only roots a chain may have.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenError } from '../../src/tokens/error.js';
import {
  delegatedBlockId,
  encodeClaims,
  LIMIT_KEYS,
  MAX_BLOCKS,
  MAX_TOKEN_BYTES,
  parseToken,
  serializeToken,
  type BlockClaims,
  type TokenLimits,
} from '../../src/tokens/format.js';
import { generateKeyPair, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken, mintRootToken } from '../../src/tokens/mint.js';
import { SCOPES, scopesAllow, scopesWithin, type Scope } from '../../src/tokens/scopes.js';
import { limitsWithin, verifyToken, type VerifyOptions } from '../../src/tokens/verify.js';
import { makePlatform, signDelegated, signRoot, subOf, thrownBy, tokenOf, type Platform, type SignedBlock } from './hand-made.js';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';
const TENANT_SCOPES = SCOPES.filter((s) => s !== 'service:platform-admin');
const DERIVED_ID = /^tok-[0-9a-hjkmnp-tv-z]{26}$/;

type DelegatedClaims = Omit<BlockClaims, 'kid' | 'tid' | 'jti'>;

let platform: Platform;
let holders: KeyPair[];

beforeAll(() => {
  platform = makePlatform();
  holders = Array.from({ length: 5 }, () => generateKeyPair());
});

function optionsAt(nowMs: number): VerifyOptions {
  return { ...platform.options, now: nowMs };
}

// ---- arbitraries ----------------------------------------------------------------------------

const jtiArb = (maxLength: number) => fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: 1, maxLength });

/** Tenant ids matching SPEC §4: lowercase letter first, letters/digits/hyphens, no "--", no trailing hyphen. */
const tidArb = (maxMiddle: number) =>
  fc
    .tuple(fc.constantFrom(...LOWER), fc.string({ unit: fc.constantFrom(...LOWER, ...DIGITS, '-'), maxLength: maxMiddle }), fc.constantFrom(...LOWER, ...DIGITS))
    .map(([first, middle, last]) => first + middle + last)
    .filter((tid) => !tid.includes('--'));

const limitsArb = (amount: fc.Arbitrary<number>): fc.Arbitrary<TokenLimits> =>
  fc.record({ max_vms: amount, storage_quota_gb: amount, max_vcpus: amount, max_memory_mb: amount }, { requiredKeys: [] });

/**
 * Root claims (without kid and sub) obeying the platform/tenant rule: platform-admin exactly when there is no tid.
 * A chainable root is what a delegation chain needs: a tenant root that demands proof of possession.
 */
function rootClaimsArb(sizes: { jti: number; tidMiddle: number; limit: fc.Arbitrary<number> }, chainable = false) {
  return fc
    .record({
      platformScoped: chainable ? fc.constant(false) : fc.boolean(),
      keep: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
      tid: tidArb(sizes.tidMiddle),
      iat: fc.integer({ min: 0, max: 4_000_000_000 }),
      ttl: fc.integer({ min: 1, max: 90 * 86_400 }),
      jti: jtiArb(sizes.jti),
      lim: fc.option(limitsArb(sizes.limit), { nil: undefined }),
      pop: chainable ? fc.constant(true) : fc.option(fc.boolean(), { nil: undefined }),
    })
    .map(({ platformScoped, keep, tid, iat, ttl, jti, lim, pop }) => {
      const kept = TENANT_SCOPES.filter((_, i) => keep[i]);
      const scp: Scope[] = platformScoped ? ['service:platform-admin', ...kept] : kept.length > 0 ? kept : ['tenant:read'];
      const claims: Omit<BlockClaims, 'kid' | 'sub'> = { scp, iat, exp: iat + ttl, jti };
      if (!platformScoped) claims.tid = tid;
      if (lim) claims.lim = lim;
      if (pop !== undefined) claims.pop = pop;
      return claims;
    });
}

/** A block's name: printable text, astral characters included, short enough that deep chains still fit. */
const nameArb = fc.string({ unit: fc.constantFrom('a', 'Z', '7', ' ', '-', 'é', '—', '’', '😀'), minLength: 1, maxLength: 12 });

/** One delegation step: random choices that narrowClaims turns into a grant no wider than the parent's. */
const stepArb = fc.record({
  nam: fc.option(nameArb, { nil: undefined }),
  keep: fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
  expCut: fc.nat(),
  limitCuts: fc.array(fc.nat({ max: 2000 }), { minLength: 4, maxLength: 4 }),
  addLimits: fc.boolean(),
  pop: fc.option(fc.boolean(), { nil: undefined }),
  holder: fc.nat({ max: 4 }),
});
type Step = typeof stepArb extends fc.Arbitrary<infer T> ? T : never;

/** Scopes, expiry and limits chosen within the parent's: a random narrowing. */
function narrowClaims(parent: BlockClaims, rootIat: number, step: Step, sub: string): DelegatedClaims {
  const allowed = SCOPES.filter((scope) => scopesAllow(parent.scp, scope));
  const kept = allowed.filter((_, i) => step.keep[i]);
  const scp = kept.length > 0 ? kept : [allowed[allowed.length - 1]!];
  // exp in [rootIat + 1, parent.exp], so every block is current at rootIat.
  const exp = parent.exp - (step.expCut % (parent.exp - rootIat));
  const lim: TokenLimits = {};
  LIMIT_KEYS.forEach((key, i) => {
    const cap = parent.lim?.[key];
    const cut = step.limitCuts[i]!;
    if (cap !== undefined) lim[key] = cut % (cap + 1);
    else if (step.addLimits && cut % 2 === 0) lim[key] = cut;
  });
  const claims: DelegatedClaims = { sub, scp, iat: rootIat, exp };
  if (parent.lim || Object.keys(lim).length > 0) claims.lim = lim;
  if (step.pop !== undefined) claims.pop = step.pop;
  if (step.nam !== undefined) claims.nam = step.nam;
  return claims;
}

interface Chain {
  token: string;
  claims: BlockClaims[];
  holders: KeyPair[];
}

/**
 * Mints a root for holders[rootHolder], then delegates along `steps` with delegateToken. A step whose
 * block would take the token past 4096 bytes must be refused by delegateToken as too_large, and ends the chain.
 */
function buildChain(rootClaims: Omit<BlockClaims, 'kid' | 'sub'>, rootHolder: number, steps: Step[]): Chain {
  const first = holders[rootHolder]!;
  const root: BlockClaims = { kid: platform.kid, sub: subOf(first), ...rootClaims };
  const chain: Chain = { token: mintRootToken(root, platform.privateKey), claims: [root], holders: [first] };
  for (const step of steps.slice(0, MAX_BLOCKS - 1)) {
    const next = holders[step.holder]!;
    const claims = narrowClaims(chain.claims.at(-1)!, root.iat, step, subOf(next));
    const holderKey = chain.holders.at(-1)!.privateKey;
    const size = Buffer.byteLength(serializeToken([...parseToken(chain.token), { payload: encodeClaims(claims), signature: Buffer.alloc(64) }]));
    if (size > MAX_TOKEN_BYTES) {
      const error = thrownBy(() => delegateToken(chain.token, holderKey, claims));
      expect(error).toBeInstanceOf(TokenError);
      expect((error as TokenError).code).toBe('too_large');
      break;
    }
    chain.token = delegateToken(chain.token, holderKey, claims);
    expect(Buffer.byteLength(chain.token)).toBe(size);
    chain.claims.push(claims);
    chain.holders.push(next);
  }
  return chain;
}

const chainRootArb = rootClaimsArb({ jti: 16, tidMiddle: 18, limit: fc.nat({ max: 2000 }) }, true);
const chainArb = (maxSteps: number, minSteps = 0) =>
  fc.tuple(chainRootArb, fc.nat({ max: 4 }), fc.array(stepArb, { minLength: minSteps, maxLength: maxSteps })).map(
    ([root, holder, steps]) =>
      () =>
        buildChain(root, holder, steps),
  );

/** The id each block of a parsed token is known by: the root's jti, then ids derived from signatures. */
function blockIds(token: string): string[] {
  return parseToken(token).map((block, i) => (i === 0 ? block.claims.jti! : delegatedBlockId(block.signature)));
}

function refusalOf(token: string, now: number): unknown {
  return thrownBy(() => verifyToken(token, optionsAt(now)));
}

// ---- properties -----------------------------------------------------------------------------

describe('minting', () => {
  it('(a) a minted root token parses back to its claims and verifies to them, for any valid claims', () => {
    const wideRoot = rootClaimsArb({ jti: 64, tidMiddle: 61, limit: fc.maxSafeNat() });
    fc.assert(
      fc.property(wideRoot, fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(), (rootClaims, subBytes, nowPick) => {
        const claims: BlockClaims = { kid: platform.kid, sub: Buffer.from(subBytes).toString('base64url'), ...rootClaims };
        const token = mintRootToken(claims, platform.privateKey);
        expect(parseToken(token)[0]!.claims).toEqual(claims);
        // Any instant from 60 s before iat (clock skew) up to one millisecond before exp.
        const now = claims.iat * 1000 - 60_000 + (nowPick % ((claims.exp - claims.iat) * 1000 + 60_000));
        const verified = verifyToken(token, optionsAt(now));
        expect(verified).toEqual({
          rootKid: claims.kid,
          tenantId: claims.tid ?? null,
          scopes: claims.scp,
          subject: claims.sub,
          tokenId: claims.jti,
          expiresAt: claims.exp,
          proofOfPossession: claims.pop === true,
          chain: [{ jti: claims.jti, sub: claims.sub, scp: claims.scp, exp: claims.exp, ...(claims.lim ? { lim: claims.lim } : {}) }],
        });
      }),
      { numRuns: 300 },
    );
  });
});

describe('delegation', () => {
  it('(b) any chain built with delegateToken by random narrowing verifies, and is never wider than its root', () => {
    const lengths: number[] = [];
    fc.assert(
      fc.property(chainArb(MAX_BLOCKS - 1), (build) => {
        const { token, claims, holders: chainHolders } = build();
        lengths.push(claims.length);
        const root = claims[0]!;
        const verified = verifyToken(token, optionsAt(root.iat * 1000));
        expect(verified.chain).toHaveLength(claims.length);
        expect(verified.tenantId).toBe(root.tid ?? null);
        expect(verified.tenantId).not.toBeNull();
        expect(verified.subject).toBe(subOf(chainHolders.at(-1)!));
        const ids = blockIds(token);
        expect(verified.chain.map((link) => link.jti)).toEqual(ids);
        // Names are the holders' own words: each block keeps its own, none is inherited.
        expect(verified.chain.map((link) => link.nam)).toEqual(claims.map((c) => c.nam));
        expect(verified.tokenId).toBe(ids.at(-1));
        expect(ids[0]).toBe(root.jti);
        ids.slice(1).forEach((id) => expect(id).toMatch(DERIVED_ID));
        expect(new Set(ids).size).toBe(ids.length);
        expect(root.pop).toBe(true);
        expect(verified.proofOfPossession).toBe(true);
        expect(scopesWithin(verified.scopes, root.scp)).toBe(true);
        expect(verified.expiresAt).toBeLessThanOrEqual(root.exp);
        expect(verified.expiresAt).toBe(Math.min(...claims.map((c) => c.exp)));
        expect(limitsWithin(verified.chain.at(-1)!.lim, root.lim)).toBe(true);
        verified.chain.forEach((link, i) => {
          if (i === 0) return;
          const parent = verified.chain[i - 1]!;
          expect(scopesWithin(link.scp, parent.scp)).toBe(true);
          expect(link.exp).toBeLessThanOrEqual(parent.exp);
          expect(limitsWithin(link.lim, parent.lim)).toBe(true);
        });
      }),
      { numRuns: 200 },
    );
    // The generator must reach full-length chains, or this property says little about deep delegation.
    expect(lengths).toContain(MAX_BLOCKS);
  });

  it('(d) a hand-made block signed by the holder but wider than its parent is refused as widened', () => {
    const kindArb = fc.constantFrom('scope', 'expiry', 'larger-limit', 'missing-limit', 'no-limits');
    fc.assert(
      fc.property(chainArb(5), stepArb, kindArb, fc.nat({ max: 10_000 }), (build, step, wantedKind, amount) => {
        const chain = build();
        const parent = chain.claims.at(-1)!;
        const rootIat = chain.claims[0]!.iat;
        const child = narrowClaims(parent, rootIat, step, subOf(holders[step.holder]!)) as Record<string, unknown>;
        const limited = LIMIT_KEYS.filter((key) => parent.lim?.[key] !== undefined);
        const beyond = SCOPES.filter((scope) => !scopesAllow(parent.scp, scope));
        // Fall back to a later expiry, which always widens, when the wanted kind cannot apply to this parent.
        const kind =
          (wantedKind === 'scope' && beyond.length === 0) || (wantedKind !== 'scope' && wantedKind !== 'expiry' && limited.length === 0) ? 'expiry' : wantedKind;
        const lim = { ...(child.lim as TokenLimits | undefined) };
        const key = limited[amount % Math.max(1, limited.length)]!;
        if (kind === 'scope') child.scp = [...(child.scp as Scope[]), beyond[amount % beyond.length]!];
        if (kind === 'expiry') child.exp = parent.exp + 1 + amount;
        if (kind === 'larger-limit') child.lim = { ...lim, [key]: parent.lim![key]! + 1 + amount };
        if (kind === 'missing-limit') child.lim = Object.fromEntries(Object.entries(lim).filter(([k]) => k !== key));
        if (kind === 'no-limits') delete child.lim;

        const blocks = parseToken(chain.token);
        const widened = signDelegated(blocks.at(-1)!, child, chain.holders.at(-1)!.privateKey);
        const error = refusalOf(serializeToken([...blocks, widened]), rootIat * 1000);
        expect(error).toBeInstanceOf(TokenError);
        expect((error as TokenError).code).toBe('widened');
      }),
      { numRuns: 300 },
    );
  });

  it('(e) a block spliced in from another token, valid in its own chain, is refused as bad_signature', () => {
    fc.assert(
      fc.property(chainArb(4), chainArb(4), fc.nat(), fc.nat(), (buildA, buildB, pickA, pickB) => {
        const a = parseToken(buildA().token);
        const b = parseToken(buildB().token);
        fc.pre(a.length >= 2 && b.length >= 2);
        fc.pre(!a[0]!.signature.equals(b[0]!.signature));
        // Replace block i of A with block j of B: a root for a root, a delegated block for a delegated one.
        const i = pickA % a.length;
        const j = i === 0 ? 0 : 1 + (pickB % (b.length - 1));
        const spliced = [...a];
        spliced[i] = b[j]!;
        const error = refusalOf(serializeToken(spliced), a[0]!.claims.iat * 1000);
        expect(error).toBeInstanceOf(TokenError);
        expect((error as TokenError).code).toBe('bad_signature');
      }),
      { numRuns: 200 },
    );
  });

  it('(f) a correctly signed chain whose root lacks pop, or has no tenant, is refused as malformed', () => {
    const rootFault = fc.constantFrom('no-pop', 'pop-false', 'platform', 'platform-no-pop');
    fc.assert(
      fc.property(chainArb(4, 1), rootFault, (build, fault) => {
        const chain = build();
        fc.pre(chain.claims.length >= 2);
        const root: Record<string, unknown> = { ...chain.claims[0]! };
        if (fault === 'no-pop' || fault === 'platform-no-pop') delete root.pop;
        if (fault === 'pop-false') root.pop = false;
        if (fault === 'platform' || fault === 'platform-no-pop') {
          delete root.tid;
          root.scp = ['service:platform-admin'];
        }
        // Re-sign every block so that the root's fault is the only thing wrong.
        const blocks: SignedBlock[] = [signRoot(root, platform.privateKey)];
        chain.claims.slice(1).forEach((claims, i) => {
          blocks.push(signDelegated(blocks[i]!, claims as unknown as Record<string, unknown>, chain.holders[i]!.privateKey));
        });
        const now = chain.claims[0]!.iat * 1000;
        // The root alone is a valid token: only chaining from it is refused.
        expect(verifyToken(tokenOf(blocks[0]!), optionsAt(now)).chain).toHaveLength(1);
        const error = refusalOf(tokenOf(...blocks), now);
        expect(error).toBeInstanceOf(TokenError);
        expect((error as TokenError).code).toBe('malformed');
        const why = { 'no-pop': /proof of possession/, 'pop-false': /proof of possession/, platform: /platform tokens cannot be delegated/ };
        // Both faults at once: either reason is right.
        expect((error as TokenError).message).toMatch(fault === 'platform-no-pop' ? /platform tokens cannot be delegated|proof of possession/ : why[fault]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('narrowing decides', () => {
  /**
   * SPEC §5's scope table, written out again so that the verifier is not checked against its own
   * scopesWithin: the tenant tiers tenant-admin > input > user > read, and node:agent apart, granted
   * only by tenant-admin (platform-admin never reaches a chain).
   */
  const GRANTS: Record<Scope, readonly Scope[]> = {
    'service:platform-admin': SCOPES,
    'service:tenant-admin': ['service:tenant-admin', 'tenant:input', 'tenant:user', 'tenant:read', 'node:agent'],
    'tenant:input': ['tenant:input', 'tenant:user', 'tenant:read'],
    'tenant:user': ['tenant:user', 'tenant:read'],
    'tenant:read': ['tenant:read'],
    'node:agent': ['node:agent'],
  };

  /** The model: a block narrows its parent when it asks no scope, expiry or limit beyond the parent's. */
  function narrows(child: BlockClaims, parent: BlockClaims): boolean {
    const scopes = child.scp.every((wanted) => parent.scp.some((held) => GRANTS[held].includes(wanted)));
    const limits = LIMIT_KEYS.every((key) => {
      const cap = parent.lim?.[key];
      const value = child.lim?.[key];
      return cap === undefined || (value !== undefined && value <= cap);
    });
    return scopes && child.exp <= parent.exp && limits;
  }

  /** A block drawn without regard to its parent: any scopes, an expiry near the parent's, any limits. */
  const looseArb = fc.record({
    scp: fc.subarray([...TENANT_SCOPES], { minLength: 1 }),
    expDelta: fc.integer({ min: -600, max: 3 }),
    lim: fc.option(limitsArb(fc.nat({ max: 2000 })), { nil: undefined }),
    pop: fc.option(fc.boolean(), { nil: undefined }),
  });
  /** Four in five steps narrow by construction, so long chains that verify are common too. */
  const anyStepArb = fc.record({ narrow: fc.nat({ max: 4 }).map((n) => n > 0), step: stepArb, loose: looseArb });

  it('(g) over random chains of correctly signed blocks, verification accepts exactly those where every block narrows its parent', () => {
    const seen = { longAccepted: 0, longRefused: 0 };
    fc.assert(
      fc.property(chainRootArb, fc.nat({ max: 4 }), fc.array(anyStepArb, { maxLength: MAX_BLOCKS - 1 }), (rootClaims, rootHolder, steps) => {
        const root: BlockClaims = { kid: platform.kid, sub: subOf(holders[rootHolder]!), ...rootClaims };
        const claims: BlockClaims[] = [root];
        const blocks: SignedBlock[] = [signRoot(root as unknown as Record<string, unknown>, platform.privateKey)];
        const signers = [holders[rootHolder]!];
        for (const { narrow, step, loose } of steps) {
          const parent = claims.at(-1)!;
          const sub = subOf(holders[step.holder]!);
          const child: BlockClaims = narrow
            ? narrowClaims(parent, root.iat, step, sub)
            : {
                sub,
                scp: loose.scp,
                iat: root.iat,
                exp: Math.max(root.iat + 1, parent.exp + loose.expDelta),
                ...(loose.lim ? { lim: loose.lim } : {}),
                ...(loose.pop !== undefined ? { pop: loose.pop } : {}),
              };
          blocks.push(signDelegated(blocks.at(-1)!, child as unknown as Record<string, unknown>, signers.at(-1)!.privateKey));
          claims.push(child);
          signers.push(holders[step.holder]!);
        }
        const token = tokenOf(...blocks);
        // Only narrowing is in question: the token must be within the size bound.
        fc.pre(Buffer.byteLength(token) <= MAX_TOKEN_BYTES);
        const firstWider = claims.findIndex((child, i) => i > 0 && !narrows(child, claims[i - 1]!));
        const long = claims.length >= 4;
        if (firstWider === -1) {
          const verified = verifyToken(token, optionsAt(root.iat * 1000));
          expect(verified.chain).toHaveLength(claims.length);
          expect(verified.subject).toBe(claims.at(-1)!.sub);
          if (long) seen.longAccepted++;
        } else {
          const error = refusalOf(token, root.iat * 1000);
          expect(error).toBeInstanceOf(TokenError);
          expect((error as TokenError).code).toBe('widened');
          expect((error as TokenError).message).toMatch(new RegExp(`^block ${firstWider}:`));
          if (long) seen.longRefused++;
        }
      }),
      { numRuns: 400 },
    );
    // Both answers, on long chains as well, or the property says little (about 80 and 150 of 400 runs).
    expect(seen.longAccepted).toBeGreaterThan(20);
    expect(seen.longRefused).toBeGreaterThan(20);
  });
});

describe('tampering', () => {
  function flipBit(token: string, position: number, bit: number): string {
    return token.slice(0, position) + String.fromCharCode(token.charCodeAt(position) ^ (1 << bit)) + token.slice(position + 1);
  }

  function expectTokenErrorFor(token: string, now: number): void {
    const error = refusalOf(token, now);
    expect(error, `tampered token: ${token}`).toBeInstanceOf(TokenError);
  }

  it('(c) flipping any single bit of any character of a valid token makes verifyToken throw a TokenError', () => {
    fc.assert(
      fc.property(chainArb(3), fc.nat(), fc.integer({ min: 0, max: 6 }), (build, position, bit) => {
        const { token, claims } = build();
        expectTokenErrorFor(flipBit(token, position % token.length, bit), claims[0]!.iat * 1000);
      }),
      { numRuns: 500 },
    );
  });

  it('(c) replacing any single character of a valid token by another makes verifyToken throw a TokenError', () => {
    const replacement = fc.constantFrom(...BASE64URL, '.', '=', '+', '/', ' ', '\u00e9', '\u0000');
    fc.assert(
      fc.property(chainArb(3), fc.nat(), replacement, (build, pick, char) => {
        const { token, claims } = build();
        const position = pick % token.length;
        fc.pre(token[position] !== char);
        expectTokenErrorFor(token.slice(0, position) + char + token.slice(position + 1), claims[0]!.iat * 1000);
      }),
      { numRuns: 500 },
    );
  });

  it('(c) every single-bit flip of every character of a three-block token is refused with a TokenError, exhaustively', () => {
    const chain = buildChain(
      { tid: 'acme-corp', scp: ['service:tenant-admin'], iat: 1_700_000_000, exp: 1_700_003_600, jti: 'root', lim: { max_vms: 3 }, pop: true },
      0,
      [
        { keep: [false, false, true, true, true, false], expCut: 10, limitCuts: [2, 0, 0, 0], addLimits: false, pop: undefined, holder: 1, nam: undefined },
        { keep: [false, false, false, false, true, false], expCut: 20, limitCuts: [1, 0, 0, 0], addLimits: false, pop: false, holder: 2, nam: 'ci runner' },
      ],
    );
    expect(chain.claims).toHaveLength(3);
    const now = 1_700_000_000_000;
    expect(verifyToken(chain.token, optionsAt(now)).tokenId).toBe(delegatedBlockId(parseToken(chain.token)[2]!.signature));
    const codes = new Set<string>();
    for (let position = 0; position < chain.token.length; position++) {
      for (let bit = 0; bit < 7; bit++) {
        const error = refusalOf(flipBit(chain.token, position, bit), now);
        if (!(error instanceof TokenError)) expect.fail(`flipping bit ${bit} of character ${position} gave ${String(error)}`);
        codes.add(error.code);
      }
    }
    // Flips that break the text or its strict base64url are malformed; flips that still decode are caught by
    // the root's kid lookup or by a signature, which every check of time and narrowing comes after.
    expect(['bad_signature', 'malformed', 'unknown_key']).toEqual(expect.arrayContaining([...codes]));
    expect(codes.has('malformed')).toBe(true);
    expect(codes.has('bad_signature')).toBe(true);
  });
});
