/**
 * The `pct1` wire form (SPEC §5) and every way untrusted token text can be malformed. Each bad token
 * is signed correctly, so the only thing wrong with it is the thing the test names; each must end in
 * a TokenError with a stable code, never an uncaught SyntaxError or TypeError.
 */
import { sign } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  delegatedBlockId,
  delegateSigningInput,
  encodeClaims,
  MAX_BLOCKS,
  MAX_TOKEN_BYTES,
  parseToken,
  rootSigningInput,
  serializeToken,
  TOKEN_PREFIX,
  type BlockClaims,
} from '../../src/tokens/format.js';
import { TokenError } from '../../src/tokens/error.js';
import { generateKeyPair, type KeyPair } from '../../src/tokens/keys.js';
import { verifyToken } from '../../src/tokens/verify.js';
import {
  bearerRootClaims,
  delegatedClaims,
  expectTokenError,
  makePlatform,
  NOW_SECONDS,
  signDelegated,
  signRoot,
  signRootPayload,
  subOf,
  tenantRootClaims,
  thrownBy,
  tokenOf,
  type Platform,
  type RawClaims,
} from './hand-made.js';

let platform: Platform;
let holder: KeyPair;
let delegate: KeyPair;

beforeAll(() => {
  platform = makePlatform();
  holder = generateKeyPair();
  delegate = generateKeyPair();
});

/** A root-only token whose claims are the valid tenant root claims with `overrides` applied. */
function rootWith(overrides: RawClaims): string {
  return tokenOf(signRoot(tenantRootClaims(platform, holder, overrides), platform.privateKey));
}

/** A valid (pop) root followed by one block (signed by the root's holder) with `overrides` applied. */
function delegatedWith(overrides: RawClaims): string {
  const root = signRoot(tenantRootClaims(platform, holder), platform.privateKey);
  return tokenOf(root, signDelegated(root, delegatedClaims(delegate, overrides), holder.privateKey));
}

/** A root block whose payload is exactly `text`, signed by the platform key. */
function rootPayloadToken(text: string): string {
  return tokenOf(signRootPayload(Buffer.from(text), platform.privateKey));
}

function refuses(token: string, code: Parameters<typeof expectTokenError>[1], now = platform.options.now): void {
  expectTokenError(() => verifyToken(token, { ...platform.options, now }), code);
}

/** Like refuses(.., 'malformed'), and the reason given names `why`: the refusal has the cause the test means. */
function refusesMalformedFor(token: string, why: RegExp): void {
  const error = thrownBy(() => verifyToken(token, platform.options));
  expect(error).toBeInstanceOf(TokenError);
  expect((error as TokenError).code).toBe('malformed');
  expect((error as TokenError).message).toMatch(why);
}

const ONLY_BLOCK_0 = /^block 1: only block 0 may carry kid, tid or jti$/;

describe('the pct1 layout', () => {
  it('serializeToken writes pct1 then base64url payload and signature per block, joined by dots', () => {
    const blocks = [
      { payload: Buffer.from('{"a":1}'), signature: Buffer.alloc(64, 0xfb) },
      { payload: Buffer.from('{"b":2}'), signature: Buffer.alloc(64, 0xff) },
    ];
    const text = serializeToken(blocks);
    expect(text.split('.')).toEqual([
      TOKEN_PREFIX,
      Buffer.from('{"a":1}').toString('base64url'),
      Buffer.alloc(64, 0xfb).toString('base64url'),
      Buffer.from('{"b":2}').toString('base64url'),
      Buffer.alloc(64, 0xff).toString('base64url'),
    ]);
    expect(text).not.toMatch(/[=+/]/);
  });

  it('parseToken returns the claims, payload bytes and signature bytes of each block', () => {
    const root = signRoot(tenantRootClaims(platform, holder, { lim: { max_vms: 3 }, pop: true }), platform.privateKey);
    const child = signDelegated(root, delegatedClaims(delegate), holder.privateKey);
    const blocks = parseToken(tokenOf(root, child));
    expect(blocks).toHaveLength(2);
    expect(blocks[0]!.payload).toEqual(root.payload);
    expect(blocks[0]!.signature).toEqual(root.signature);
    expect(blocks[0]!.claims).toEqual(tenantRootClaims(platform, holder, { lim: { max_vms: 3 }, pop: true }));
    expect(blocks[1]!.claims).toEqual(delegatedClaims(delegate));
  });

  it('encodeClaims writes the claims as JSON that parseToken reads back', () => {
    const claims: BlockClaims = { kid: platform.kid, sub: subOf(holder), scp: ['service:platform-admin'], iat: 1, exp: 2, jti: 'j' };
    expect(JSON.parse(encodeClaims(claims).toString('utf8'))).toEqual(claims);
    const token = tokenOf({ payload: encodeClaims(claims), signature: Buffer.alloc(64) });
    expect(parseToken(token)[0]!.claims).toEqual(claims);
  });

  it('root and delegate signing inputs are domain-separated, and the delegate input chains the previous signature', () => {
    const payload = Buffer.from('{}');
    const previous = Buffer.alloc(64, 7);
    expect(rootSigningInput(payload)).toEqual(Buffer.concat([Buffer.from('ppn-token-v1/root\n'), payload]));
    expect(delegateSigningInput(previous, payload)).toEqual(Buffer.concat([Buffer.from('ppn-token-v1/delegate\n'), previous, payload]));
  });

  it('bounds a token at 8 blocks and 4096 bytes (SPEC §5)', () => {
    expect(MAX_BLOCKS).toBe(8);
    expect(MAX_TOKEN_BYTES).toBe(4096);
  });
});

describe('the hand-made tokens these refusals start from', () => {
  it('verify as they are, so each refusal below is caused by the one change it names', () => {
    expect(verifyToken(rootWith({}), platform.options).tokenId).toBe('root-jti');
    const delegated = delegatedWith({});
    expect(verifyToken(delegated, platform.options).tokenId).toBe(delegatedBlockId(parseToken(delegated)[1]!.signature));
  });

  it('carry pop on the root and no jti, kid or tid in the delegated block, as the format demands', () => {
    const [root, child] = parseToken(delegatedWith({}));
    expect(root!.claims.pop).toBe(true);
    expect(Object.keys(child!.claims).sort()).toEqual(['exp', 'iat', 'scp', 'sub']);
  });
});

describe('structural refusals', () => {
  it('throws a TokenError (malformed) for an empty string', () => {
    refuses('', 'malformed');
  });

  it('throws a TokenError (malformed), not a TypeError, when the token is not a string at all', () => {
    for (const value of [undefined, null, 42, {}, ['pct1']]) refuses(value as string, 'malformed');
  });

  it('throws a TokenError (malformed) for a wrong prefix', () => {
    const [, ...rest] = rootWith({}).split('.');
    refuses(['pct2', ...rest].join('.'), 'malformed');
    refuses(['PCT1', ...rest].join('.'), 'malformed');
    refuses(['', ...rest].join('.'), 'malformed');
  });

  it('throws a TokenError (malformed) for the prefix alone, with or without a dot', () => {
    refuses('pct1', 'malformed');
    refuses('pct1.', 'malformed');
  });

  it('throws a TokenError (malformed) for an odd number of parts after the prefix (an incomplete block)', () => {
    const token = rootWith({});
    const [, payload] = token.split('.');
    refuses(`pct1.${payload}`, 'malformed');
    refuses(`${token}.${payload}`, 'malformed');
    refuses(`${token}.`, 'malformed');
  });

  it('throws a TokenError (too_many_blocks) for more than 8 blocks', () => {
    const parts = rootWith({}).split('.').slice(1);
    const nine = [TOKEN_PREFIX, ...Array.from({ length: MAX_BLOCKS + 1 }, () => parts).flat()].join('.');
    expect(nine.length).toBeLessThanOrEqual(MAX_TOKEN_BYTES);
    refuses(nine, 'too_many_blocks');
  });

  it('throws a TokenError (too_large) for more than 4096 bytes, before looking at anything else', () => {
    refuses(`pct1.${'A'.repeat(MAX_TOKEN_BYTES)}`, 'too_large');
    refuses('x'.repeat(MAX_TOKEN_BYTES + 1), 'too_large');
  });

  it('does not call a token of exactly 4096 bytes too large', () => {
    const text = `pct1.${'A'.repeat(MAX_TOKEN_BYTES - 5)}`;
    expect(text).toHaveLength(MAX_TOKEN_BYTES);
    refuses(text, 'malformed');
  });

  it('throws a TokenError (too_large) for a token of at most 4096 UTF-16 units but more than 4096 bytes of UTF-8', () => {
    // Each é is one UTF-16 unit and two UTF-8 bytes; the bound is on bytes, as they arrive over the wire.
    const twoByte = `pct1.${'\u00e9'.repeat((MAX_TOKEN_BYTES - 4) / 2)}`;
    expect(twoByte.length).toBeLessThanOrEqual(MAX_TOKEN_BYTES);
    expect(Buffer.byteLength(twoByte)).toBe(MAX_TOKEN_BYTES + 1);
    refuses(twoByte, 'too_large');
    // A valid token padded with a three-byte character: 4096 units, far more bytes.
    const valid = rootWith({});
    const threeByte = `${valid}.${'\u20ac'.repeat(MAX_TOKEN_BYTES - valid.length - 1)}`;
    expect(threeByte).toHaveLength(MAX_TOKEN_BYTES);
    expect(Buffer.byteLength(threeByte)).toBeGreaterThan(MAX_TOKEN_BYTES);
    refuses(threeByte, 'too_large');
    // An astral character is two UTF-16 units and four bytes.
    const astral = `pct1.${'\u{1f600}'.repeat(1024)}`;
    expect(astral.length).toBeLessThanOrEqual(MAX_TOKEN_BYTES);
    expect(Buffer.byteLength(astral)).toBeGreaterThan(MAX_TOKEN_BYTES);
    refuses(astral, 'too_large');
  });

  it('does not call a token of exactly 4096 bytes with multi-byte characters too large', () => {
    const text = `pct1.${'\u00e9'.repeat((MAX_TOKEN_BYTES - 6) / 2)}A`;
    expect(Buffer.byteLength(text)).toBe(MAX_TOKEN_BYTES);
    refuses(text, 'malformed');
  });

  it('throws a TokenError (malformed) for a payload that is not base64url', () => {
    const [, payload, signature] = rootWith({}).split('.');
    refuses(`pct1.${payload!.slice(0, -1)}*.${signature}`, 'malformed');
    refuses(`pct1.${Buffer.from('{"x":"??>>"}').toString('base64')}.${signature}`, 'malformed');
  });

  it('throws a TokenError (malformed) for padded base64url', () => {
    // A payload whose length is not a multiple of 3 needs padding in base64; base64url in pct1 must omit it.
    const root = [1, 2, 3]
      .map((n) => signRoot(tenantRootClaims(platform, holder, { jti: 'j'.repeat(n) }), platform.privateKey))
      .find((block) => block.payload.length % 3 !== 0)!;
    const paddedPayload = root.payload.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
    expect(paddedPayload).toMatch(/=$/);
    refuses(`pct1.${paddedPayload}.${root.signature.toString('base64url')}`, 'malformed');
    refuses(`pct1.${root.payload.toString('base64url')}.${root.signature.toString('base64url')}==`, 'malformed');
  });

  it('throws a TokenError (malformed) for an empty payload part', () => {
    const [, , signature] = rootWith({}).split('.');
    refuses(`pct1..${signature}`, 'malformed');
  });

  it('throws a TokenError (malformed) for a signature of the wrong length', () => {
    const root = signRoot(tenantRootClaims(platform, holder), platform.privateKey);
    for (const signature of [root.signature.subarray(0, 63), Buffer.concat([root.signature, Buffer.from([0])]), Buffer.alloc(0)]) {
      refuses(tokenOf({ payload: root.payload, signature }), 'malformed');
    }
  });

  it('throws a TokenError (malformed) when a signature part is not base64url', () => {
    const [, payload, signature] = rootWith({}).split('.');
    refuses(`pct1.${payload}.${signature!.slice(0, -2)}+/`, 'malformed');
  });
});

describe('payload refusals', () => {
  it('throws a TokenError (malformed), not an uncaught SyntaxError, when the payload is not JSON', () => {
    refuses(rootPayloadToken('{"sub":'), 'malformed');
    refuses(rootPayloadToken('not json'), 'malformed');
    refuses(rootPayloadToken('\u0000'), 'malformed');
  });

  it('throws a TokenError (malformed) when the payload is a JSON array', () => {
    refuses(rootPayloadToken(JSON.stringify([tenantRootClaims(platform, holder)])), 'malformed');
  });

  it('throws a TokenError (malformed) when the payload is JSON null, a string or a number', () => {
    for (const text of ['null', '"pct1"', '17', 'true']) refuses(rootPayloadToken(text), 'malformed');
  });

  it('throws a TokenError (malformed) for an unknown claim', () => {
    refuses(rootWith({ nbf: NOW_SECONDS }), 'malformed');
  });

  it('throws a TokenError (malformed) for an own __proto__ claim, not treating it as a prototype', () => {
    const claims = JSON.stringify(tenantRootClaims(platform, holder)).replace(/^\{/, '{"__proto__":{"pop":false},');
    refuses(rootPayloadToken(claims), 'malformed');
  });
});

describe('claim refusals: sub', () => {
  it('throws a TokenError (malformed) when sub is missing', () => {
    refuses(rootWith({ sub: undefined }), 'malformed');
  });

  it('throws a TokenError (malformed) when sub is not a string', () => {
    refuses(rootWith({ sub: 12345 }), 'malformed');
    refuses(rootWith({ sub: [subOf(holder)] }), 'malformed');
  });

  it('throws a TokenError (malformed) when sub is not 32 bytes', () => {
    refuses(rootWith({ sub: Buffer.alloc(31, 1).toString('base64url') }), 'malformed');
    refuses(rootWith({ sub: Buffer.alloc(33, 1).toString('base64url') }), 'malformed');
    refuses(rootWith({ sub: '' }), 'malformed');
  });

  it('throws a TokenError (malformed) when a root sub is a small-order point, with or without the sign bit', () => {
    // The neutral element (y = 1) and the point of order 2 (y = -1); keys.test.ts covers the whole list.
    for (const hex of ['01'.padEnd(64, '0'), `ec${'ff'.repeat(30)}7f`]) {
      const raw = Buffer.from(hex, 'hex');
      refusesMalformedFor(rootWith({ sub: raw.toString('base64url') }), /^block 0: sub /);
      raw[31]! |= 0x80;
      refusesMalformedFor(rootWith({ sub: raw.toString('base64url') }), /^block 0: sub /);
    }
  });

  it('throws a TokenError (malformed) when a delegated block names a small-order point as its holder', () => {
    refusesMalformedFor(delegatedWith({ sub: Buffer.alloc(32).toString('base64url') }), /^block 1: sub /);
  });

  it('throws a TokenError (malformed) when sub is a key in hex or padded base64 rather than base64url', () => {
    const raw = Buffer.from(subOf(holder), 'base64url');
    refuses(rootWith({ sub: raw.toString('hex') }), 'malformed');
    refuses(rootWith({ sub: raw.toString('base64') }), 'malformed');
  });
});

describe('claim refusals: scp', () => {
  it('throws a TokenError (malformed) when scp is missing', () => {
    refuses(rootWith({ scp: undefined }), 'malformed');
  });

  it('throws a TokenError (malformed) when scp is a string rather than a list', () => {
    refuses(rootWith({ scp: 'service:tenant-admin' }), 'malformed');
  });

  it('throws a TokenError (malformed) when scp is empty', () => {
    refuses(rootWith({ scp: [] }), 'malformed');
  });

  it('throws a TokenError (malformed) when scp names an unknown scope', () => {
    refuses(rootWith({ scp: ['tenant:admin'] }), 'malformed');
    refuses(rootWith({ scp: ['tenant:read', 'service:*'] }), 'malformed');
  });

  it('throws a TokenError (malformed) when scp holds a non-string', () => {
    refuses(rootWith({ scp: ['tenant:read', 1] }), 'malformed');
    refuses(rootWith({ scp: [null] }), 'malformed');
  });

  it('throws a TokenError (malformed) when scp repeats a scope', () => {
    refuses(rootWith({ scp: ['tenant:read', 'tenant:read'] }), 'malformed');
  });
});

describe('claim refusals: iat and exp', () => {
  for (const claim of ['iat', 'exp'] as const) {
    it(`throws a TokenError (malformed) when ${claim} is missing`, () => {
      refuses(rootWith({ [claim]: undefined }), 'malformed');
    });

    it(`throws a TokenError (malformed) when ${claim} is a string`, () => {
      refuses(rootWith({ [claim]: String(NOW_SECONDS + 10) }), 'malformed');
    });

    it(`throws a TokenError (malformed) when ${claim} is not a whole number`, () => {
      refuses(rootWith({ [claim]: NOW_SECONDS + 0.5 }), 'malformed');
    });

    it(`throws a TokenError (malformed) when ${claim} is negative`, () => {
      refuses(rootWith({ [claim]: -1 }), 'malformed');
    });

    it(`throws a TokenError (malformed) when ${claim} is beyond the safe integers`, () => {
      refuses(rootWith({ [claim]: 2 ** 53 }), 'malformed');
    });
  }

  it('throws a TokenError (malformed) when exp equals iat', () => {
    refuses(rootWith({ iat: NOW_SECONDS, exp: NOW_SECONDS }), 'malformed');
  });

  it('throws a TokenError (malformed) when exp is before iat', () => {
    refuses(rootWith({ iat: NOW_SECONDS, exp: NOW_SECONDS - 1 }), 'malformed');
  });

  it('throws a TokenError (malformed) when a delegated block has exp not after its own iat', () => {
    refuses(delegatedWith({ iat: NOW_SECONDS + 100, exp: NOW_SECONDS + 100 }), 'malformed');
  });
});

describe('claim refusals: jti', () => {
  it('throws a TokenError (malformed) when jti is missing', () => {
    refuses(rootWith({ jti: undefined }), 'malformed');
  });

  it('throws a TokenError (malformed) when jti is a number', () => {
    refuses(rootWith({ jti: 7 }), 'malformed');
  });

  it('throws a TokenError (malformed) when jti is empty', () => {
    refuses(rootWith({ jti: '' }), 'malformed');
  });

  it('throws a TokenError (malformed) when jti is longer than 64 characters', () => {
    refuses(rootWith({ jti: 'a'.repeat(65) }), 'malformed');
  });

  it('throws a TokenError (malformed) when jti has characters outside base64url', () => {
    for (const jti of ['a.b', 'a b', 'a/b', 'a=', 'é']) refuses(rootWith({ jti }), 'malformed');
  });
});

describe('claim refusals: kid', () => {
  it('throws a TokenError (malformed) when the root block has no kid', () => {
    refuses(rootWith({ kid: undefined }), 'malformed');
  });

  it('throws a TokenError (malformed) when kid is not a string', () => {
    refuses(rootWith({ kid: 1 }), 'malformed');
  });

  it('throws a TokenError (malformed) when kid is empty, too long or has characters outside base64url', () => {
    for (const kid of ['', 'k'.repeat(65), 'a/b', 'a.b']) refuses(rootWith({ kid }), 'malformed');
  });

  it('throws a TokenError (malformed) when a delegated block carries kid', () => {
    refusesMalformedFor(delegatedWith({ kid: platform.kid }), ONLY_BLOCK_0);
  });
});

describe('claim refusals: tid', () => {
  it('throws a TokenError (malformed) when tid is not a string', () => {
    refuses(rootWith({ tid: 42 }), 'malformed');
    refuses(rootWith({ tid: null }), 'malformed');
  });

  it('throws a TokenError (malformed) when tid is not a valid tenant id', () => {
    for (const tid of ['Acme', 'a', 'acme--corp', 'acme-', '-acme', '1acme', 'acme_corp', 'a'.repeat(64), '']) {
      refuses(rootWith({ tid }), 'malformed');
    }
  });

  it('accepts tenant ids at the edges of the pattern (2 and 63 characters)', () => {
    expect(verifyToken(rootWith({ tid: 'a1' }), platform.options).tenantId).toBe('a1');
    expect(verifyToken(rootWith({ tid: `a${'b'.repeat(62)}` }), platform.options).tenantId).toHaveLength(63);
  });

  it('throws a TokenError (malformed) when a delegated block carries tid', () => {
    refusesMalformedFor(delegatedWith({ tid: 'acme-corp' }), ONLY_BLOCK_0);
  });

  it('throws a TokenError (malformed) when a delegated block carries tid, even a null one', () => {
    refusesMalformedFor(delegatedWith({ tid: null }), ONLY_BLOCK_0);
  });
});

describe('claim refusals: lim', () => {
  it('throws a TokenError (malformed) when lim is not an object', () => {
    for (const lim of ['max_vms=2', 2, true, null]) refuses(rootWith({ lim }), 'malformed');
  });

  it('throws a TokenError (malformed) when lim is an array', () => {
    refuses(rootWith({ lim: [2] }), 'malformed');
  });

  it('throws a TokenError (malformed) when lim names an unknown limit', () => {
    refuses(rootWith({ lim: { max_vms: 2, max_gpus: 1 } }), 'malformed');
  });

  it('throws a TokenError (malformed) when a limit is negative, fractional or not a number', () => {
    for (const amount of [-1, 1.5, '2', null, 2 ** 53]) refuses(rootWith({ lim: { max_vms: amount } }), 'malformed');
  });

  it('accepts every known limit, and zero as a limit', () => {
    const lim = { max_vms: 0, storage_quota_gb: 20, max_vcpus: 4, max_memory_mb: 4096 };
    expect(verifyToken(rootWith({ lim }), platform.options).chain[0]!.lim).toEqual(lim);
  });
});

describe('claim refusals: pop', () => {
  it('throws a TokenError (malformed) when pop is not a boolean', () => {
    for (const pop of ['true', 1, null, {}]) refuses(rootWith({ pop }), 'malformed');
  });
});

describe("claim refusals: nam and dsc (a delegated block's name and description)", () => {
  // Text a listing or a terminal would misread: a forged line, an escape sequence, reversed text, half a character.
  const UNPRINTABLE = {
    'a newline': 'ci\nforged line',
    'a carriage return': 'ci\rdeploy',
    'a tab': 'a\tb',
    'a NUL': 'a\u0000',
    'an escape sequence': 'red\u001b[31m',
    DEL: 'a\u007f',
    'a C1 control character': 'ci\u0085',
    'a line separator': 'a\u2028b',
    'a paragraph separator': 'a\u2029b',
    'a right-to-left mark': 'a\u200f',
    'a right-to-left override': 'invoice\u202egpj.exe',
    'a bidirectional isolate': 'a\u2066b\u2069',
    'a lone high surrogate': 'a\ud83d',
    'a lone low surrogate': '\ude00b',
  };

  it('accepts printable names and descriptions, and verifyToken hands them on in the chain', () => {
    const verified = verifyToken(delegatedWith({ nam: 'bob’s laptop — CI 🚀', dsc: 'nightly deploys; ask #infra before revoking' }), platform.options);
    expect(verified.chain[1]).toMatchObject({ nam: 'bob’s laptop — CI 🚀', dsc: 'nightly deploys; ask #infra before revoking' });
    expect(verified.chain[0]).not.toHaveProperty('nam');
  });

  it('bounds nam at 64 characters and dsc at 256, counting an astral character as one', () => {
    expect(verifyToken(delegatedWith({ nam: 'n'.repeat(64), dsc: 'd'.repeat(256) }), platform.options).chain[1]).toMatchObject({ nam: 'n'.repeat(64) });
    expect(verifyToken(delegatedWith({ nam: '😀'.repeat(64) }), platform.options).chain[1]!.nam).toHaveLength(128);
    refusesMalformedFor(delegatedWith({ nam: 'n'.repeat(65) }), /^block 1: nam is not printable text of 1 to 64 characters$/);
    refusesMalformedFor(delegatedWith({ nam: '😀'.repeat(65) }), /^block 1: nam /);
    refusesMalformedFor(delegatedWith({ dsc: 'd'.repeat(257) }), /^block 1: dsc is not printable text of 1 to 256 characters$/);
  });

  it('throws a TokenError (malformed) when nam or dsc is empty', () => {
    refusesMalformedFor(delegatedWith({ nam: '' }), /^block 1: nam /);
    refusesMalformedFor(delegatedWith({ dsc: '' }), /^block 1: dsc /);
  });

  it('throws a TokenError (malformed) when nam or dsc is not a string', () => {
    for (const value of [7, null, true, ['bob'], { name: 'bob' }]) {
      refusesMalformedFor(delegatedWith({ nam: value }), /^block 1: nam /);
      refusesMalformedFor(delegatedWith({ dsc: value }), /^block 1: dsc /);
    }
  });

  for (const [what, text] of Object.entries(UNPRINTABLE)) {
    it(`throws a TokenError (malformed) when nam or dsc holds ${what}`, () => {
      refusesMalformedFor(delegatedWith({ nam: text }), /^block 1: nam /);
      refusesMalformedFor(delegatedWith({ dsc: text }), /^block 1: dsc /);
    });
  }

  it('throws a TokenError (malformed) for a lone surrogate written as a JSON escape in the payload', () => {
    const root = signRoot(tenantRootClaims(platform, holder), platform.privateKey);
    const payload = Buffer.from(JSON.stringify(delegatedClaims(delegate, { nam: 'PLACEHOLDER' })).replace('PLACEHOLDER', '\\ud800'));
    expect(payload.toString()).toContain('"nam":"\\ud800"');
    const child = { payload, signature: sign(null, delegateSigningInput(root.signature, payload), holder.privateKey) };
    refusesMalformedFor(tokenOf(root, child), /^block 1: nam /);
  });

  it('accepts exactly the names a character-by-character reference accepts, for any text', () => {
    // The reference walks code points: a surrogate pair is one character, a lone surrogate is refused.
    const refused = (cp: number) =>
      cp <= 0x1f ||
      (cp >= 0x7f && cp <= 0x9f) ||
      cp === 0x2028 ||
      cp === 0x2029 ||
      cp === 0x200e ||
      cp === 0x200f ||
      (cp >= 0x202a && cp <= 0x202e) ||
      (cp >= 0x2066 && cp <= 0x2069) ||
      (cp >= 0xd800 && cp <= 0xdfff);
    const reference = (text: string) => {
      const points = [...text].map((c) => c.codePointAt(0)!);
      return points.length >= 1 && points.length <= 64 && !points.some(refused);
    };
    const interesting = fc.constantFrom('a', ' ', 'é', '—', '😀', '\u200d', '\n', '\u0085', '\u007f', '\u202e', '\u2067', '\u2028', '\ud83d', '\ude00');
    const anyCodePoint = fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp));
    const textArb = fc.array(fc.oneof(interesting, anyCodePoint), { maxLength: 70 }).map((chars) => chars.join(''));
    fc.assert(
      fc.property(textArb, (nam) => {
        let accepted = true;
        try {
          verifyToken(delegatedWith({ nam }), platform.options);
        } catch (error) {
          expect(error).toBeInstanceOf(TokenError);
          accepted = false;
        }
        expect(accepted).toBe(reference(nam));
      }),
      { numRuns: 300 },
    );
  });

  it('throws a TokenError (malformed) when the root block carries nam or dsc: an issued token keeps its name in its record', () => {
    refusesMalformedFor(rootWith({ nam: 'root' }), /^block 0: only delegated blocks carry nam or dsc/);
    refusesMalformedFor(rootWith({ dsc: 'root' }), /^block 0: only delegated blocks carry nam or dsc/);
  });
});

describe('claim refusals in a delegated block', () => {
  it('throws a TokenError (malformed) when a delegated block is missing sub', () => {
    refuses(delegatedWith({ sub: undefined }), 'malformed');
  });

  it('throws a TokenError (malformed) when a delegated block has an unknown scope', () => {
    refuses(delegatedWith({ scp: ['tenant:everything'] }), 'malformed');
  });

  it('throws a TokenError (malformed) when a delegated block has a malformed jti', () => {
    refusesMalformedFor(delegatedWith({ jti: 'has space' }), ONLY_BLOCK_0);
  });

  it('throws a TokenError (malformed) when a delegated block carries a jti, even a well-formed one', () => {
    refusesMalformedFor(delegatedWith({ jti: 'child-jti' }), ONLY_BLOCK_0);
  });

  it('throws a TokenError (malformed) when a delegated block carries a jti of any JSON type, even null', () => {
    for (const jti of [null, 7, '', false, {}]) refusesMalformedFor(delegatedWith({ jti }), ONLY_BLOCK_0);
  });

  it('throws a TokenError (malformed) when a delegated block carries kid, tid and jti together', () => {
    refusesMalformedFor(delegatedWith({ kid: platform.kid, tid: 'acme-corp', jti: 'child-jti' }), ONLY_BLOCK_0);
  });

  it('throws a TokenError (malformed) when a delegated block has an unknown claim', () => {
    refuses(delegatedWith({ aud: 'elsewhere' }), 'malformed');
  });

  it('throws a TokenError (malformed) when a delegated block has a malformed lim', () => {
    refuses(delegatedWith({ lim: { max_vms: -2 } }), 'malformed');
  });
});

describe('refusals that need the whole token', () => {
  it('throws a TokenError (unknown_key) for a kid the verifier does not know', () => {
    refuses(rootWith({ kid: 'AAAAAAAAAAA' }), 'unknown_key');
  });

  it('throws a TokenError (malformed) for platform-admin scope with a tid', () => {
    refuses(rootWith({ scp: ['service:platform-admin'], tid: 'acme-corp' }), 'malformed');
  });

  it('throws a TokenError (malformed) for a tenant scope without a tid', () => {
    refuses(rootWith({ scp: ['service:tenant-admin'], tid: undefined }), 'malformed');
    refuses(rootWith({ scp: ['tenant:read'], tid: undefined }), 'malformed');
    // node:agent alone without a tid is a shared fleet node's token (verify.test.ts); beside another scope it is not.
    refuses(rootWith({ scp: ['node:agent', 'tenant:read'], tid: undefined }), 'malformed');
  });

  it('throws a TokenError (expired) at the expiry instant, using the now option', () => {
    const token = rootWith({ exp: NOW_SECONDS + 60 });
    expect(() => verifyToken(token, { ...platform.options, now: (NOW_SECONDS + 60) * 1000 - 1 })).not.toThrow();
    refuses(token, 'expired', (NOW_SECONDS + 60) * 1000);
  });

  it('throws a TokenError (not_yet_valid) when iat is more than 60 s in the future', () => {
    refuses(rootWith({ iat: NOW_SECONDS + 61, exp: NOW_SECONDS + 3600 }), 'not_yet_valid');
  });

  it('tolerates an iat up to 60 s in the future, for clock skew', () => {
    expect(() => verifyToken(rootWith({ iat: NOW_SECONDS + 60, exp: NOW_SECONDS + 3600 }), platform.options)).not.toThrow();
  });

  it('throws a TokenError (bad_signature) for a root block signed by another key under a known kid', () => {
    const impostor = generateKeyPair();
    refuses(tokenOf(signRoot(tenantRootClaims(platform, holder), impostor.privateKey)), 'bad_signature');
  });

  it('throws a TokenError (widened) for a correctly signed delegated block with a wider scope', () => {
    refuses(delegatedWith({ scp: ['service:platform-admin'] }), 'widened');
  });

  it('accepts a root without pop on its own: a bearer root token is still valid', () => {
    const verified = verifyToken(tokenOf(signRoot(bearerRootClaims(platform, holder), platform.privateKey)), platform.options);
    expect(verified.proofOfPossession).toBe(false);
    expect(verified.chain).toHaveLength(1);
  });

  it('throws a TokenError (malformed) for a correctly signed chain whose root lacks pop or sets it false', () => {
    for (const root of [bearerRootClaims(platform, holder), tenantRootClaims(platform, holder, { pop: false })]) {
      const block = signRoot(root, platform.privateKey);
      const token = tokenOf(block, signDelegated(block, delegatedClaims(delegate), holder.privateKey));
      refusesMalformedFor(token, /root that demands proof of possession/);
    }
  });

  it('throws a TokenError (malformed) for a chain whose root lacks pop even when a delegated block sets pop', () => {
    const root = signRoot(bearerRootClaims(platform, holder), platform.privateKey);
    const token = tokenOf(root, signDelegated(root, delegatedClaims(delegate, { pop: true }), holder.privateKey));
    refusesMalformedFor(token, /root that demands proof of possession/);
  });
});
