/**
 * Ed25519 key handling and base64url (SPEC §5), checked against outside vectors: RFC 8032 §7.1 for
 * keys and signatures, RFC 4648 §10 for the encodings.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeBase64url,
  encodeBase64url,
  generateKeyPair,
  isSmallOrderPoint,
  keyId,
  parsePublicKeyText,
  privateKeyFromPem,
  privateKeyToPem,
  publicKeyFromRaw,
  rawPublicKey,
} from '../../src/tokens/keys.js';

interface Rfc8032Vector {
  name: string;
  secret_key: string;
  public_key: string;
  message: string;
  signature: string;
}
interface Rfc4648Vector {
  input: string;
  base64: string;
  base64url_unpadded: string;
}

function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

const rfc8032 = readFixture<{ source: string; vectors: Rfc8032Vector[] }>('rfc8032-ed25519.json');
const rfc4648 = readFixture<{
  source: string;
  vectors: Rfc4648Vector[];
  alphabet_vectors: { hex: string; base64: string; base64url_unpadded: string }[];
}>('rfc4648-base64.json');

// PKCS#8 DER prefix of an Ed25519 private key (RFC 8410 §7); the 32-byte seed follows.
const PKCS8_SEED_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function privateKeyFromSeed(seedHex: string) {
  return createPrivateKey({ key: Buffer.concat([PKCS8_SEED_PREFIX, Buffer.from(seedHex, 'hex')]), format: 'der', type: 'pkcs8' });
}

function flipBit(bytes: Buffer, bit: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

describe('RFC 8032 §7.1 Ed25519 vectors', () => {
  it('the fixture names its source and holds the RFC tests', () => {
    expect(rfc8032.source).toContain('RFC 8032 §7.1');
    expect(rfc8032.vectors.map((v) => v.name)).toEqual(expect.arrayContaining(['TEST 1', 'TEST 2', 'TEST 3']));
  });

  describe.each(rfc8032.vectors)('$name', (vector) => {
    const publicKey = Buffer.from(vector.public_key, 'hex');
    const message = Buffer.from(vector.message, 'hex');
    const signature = Buffer.from(vector.signature, 'hex');

    it('a private key built from the RFC seed signs to exactly the RFC signature', () => {
      expect(sign(null, message, privateKeyFromSeed(vector.secret_key)).toString('hex')).toBe(vector.signature);
    });

    it('the RFC seed derives the RFC public key, as rawPublicKey reads it', () => {
      expect(rawPublicKey(createPublicKey(privateKeyFromSeed(vector.secret_key))).toString('hex')).toBe(vector.public_key);
    });

    it('publicKeyFromRaw and rawPublicKey round-trip the RFC public key', () => {
      expect(rawPublicKey(publicKeyFromRaw(publicKey)).toString('hex')).toBe(vector.public_key);
    });

    it('node:crypto verifies the RFC signature under publicKeyFromRaw(public key)', () => {
      expect(verify(null, message, publicKeyFromRaw(publicKey), signature)).toBe(true);
    });

    it('the RFC signature does not verify once the message or the signature has one bit flipped', () => {
      const key = publicKeyFromRaw(publicKey);
      expect(verify(null, Buffer.concat([message, Buffer.from([0])]), key, signature)).toBe(false);
      if (message.length > 0) expect(verify(null, flipBit(message, 0), key, signature)).toBe(false);
      for (const bit of [0, 255, 256, 500]) expect(verify(null, message, key, flipBit(signature, bit))).toBe(false);
    });

    it('parsePublicKeyText reads the RFC public key as hex (either case), base64 (with or without =) and base64url', () => {
      const forms = [
        vector.public_key,
        vector.public_key.toUpperCase(),
        publicKey.toString('base64'),
        publicKey.toString('base64').replace(/=$/, ''),
        publicKey.toString('base64url'),
        `  ${publicKey.toString('base64url')}\n`,
      ];
      for (const form of forms) expect(parsePublicKeyText(form)?.toString('hex'), form).toBe(vector.public_key);
    });

    it('keyId names the key by the first 8 bytes of SHA-256 of its raw form, in base64url', () => {
      const expected = createHash('sha256').update(publicKey).digest().subarray(0, 8).toString('base64url');
      expect(keyId(publicKeyFromRaw(publicKey))).toBe(expected);
      expect(keyId(publicKeyFromRaw(publicKey))).toMatch(/^[A-Za-z0-9_-]{11}$/);
    });
  });
});

describe('publicKeyFromRaw and rawPublicKey', () => {
  it('publicKeyFromRaw refuses anything but 32 bytes with a RangeError (a programmer error, not a token error)', () => {
    for (const length of [0, 31, 33, 64]) expect(() => publicKeyFromRaw(Buffer.alloc(length, 1))).toThrow(RangeError);
  });

  it('rawPublicKey of a generated pair is the 32 bytes that publicKeyFromRaw rebuilds the same key from', () => {
    const { publicKey, privateKey } = generateKeyPair();
    const raw = rawPublicKey(publicKey);
    expect(raw).toHaveLength(32);
    const rebuilt = publicKeyFromRaw(raw);
    const message = Buffer.from('hello');
    expect(verify(null, message, rebuilt, sign(null, message, privateKey))).toBe(true);
  });
});

describe('parsePublicKeyText', () => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  /** 43 characters carry 258 bits for a 32-byte key; setting the lowest unused bit gives a non-canonical form. */
  const withTrailingBitSet = (text: string) => text.slice(0, -1) + ALPHABET[ALPHABET.indexOf(text.at(-1)!) | 1];
  const raw = Buffer.from(rfc8032.vectors[0]!.public_key, 'hex');

  it.each([
    ['an empty string', ''],
    ['63 hex digits', raw.toString('hex').slice(1)],
    ['65 hex digits', `${raw.toString('hex')}0`],
    ['31 bytes of hex', raw.subarray(1).toString('hex')],
    ['33 bytes of base64url', Buffer.concat([raw, Buffer.from([1])]).toString('base64url')],
    ['31 bytes of base64', raw.subarray(1).toString('base64')],
    ['base64url with non-canonical trailing bits', withTrailingBitSet(raw.toString('base64url'))],
    ['characters outside every alphabet', `${raw.toString('base64url').slice(0, 42)}*`],
    ['a PEM public key', publicKeyFromRaw(raw).export({ format: 'pem', type: 'spki' }).toString()],
  ])('refuses %s', (_, text) => {
    expect(parsePublicKeyText(text)).toBeNull();
  });

  it('decodes standard base64 that uses + and / to the same bytes as the base64url form with - and _', () => {
    // 0xfb 0xff... makes both alphabets' last two characters appear.
    const key = Buffer.concat([Buffer.from('fbfffbff', 'hex'), Buffer.alloc(28, 0xfe)]);
    const base64 = key.toString('base64');
    expect(base64).toMatch(/[+/]/);
    expect(parsePublicKeyText(base64)).toEqual(key);
    expect(parsePublicKeyText(key.toString('base64url'))).toEqual(key);
  });
});

describe('RFC 4648 §10 vectors through encodeBase64url and decodeBase64url', () => {
  it('the fixture names its source', () => {
    expect(rfc4648.source).toContain('RFC 4648 §10');
  });

  it.each(rfc4648.vectors)('encodes "$input" as $base64url_unpadded, without padding', ({ input, base64url_unpadded }) => {
    expect(encodeBase64url(Buffer.from(input))).toBe(base64url_unpadded);
  });

  it.each(rfc4648.vectors)('decodes $base64url_unpadded back to "$input"', ({ input, base64url_unpadded }) => {
    expect(decodeBase64url(base64url_unpadded)?.toString('utf8')).toBe(input);
  });

  it.each(rfc4648.vectors.filter((v) => v.base64.includes('=')))('refuses the padded form $base64 by design (tokens never carry padding)', ({ base64 }) => {
    expect(decodeBase64url(base64)).toBeNull();
  });

  it.each(rfc4648.alphabet_vectors)('decodes $base64url_unpadded (base64url alphabet) to $hex', ({ hex, base64url_unpadded }) => {
    expect(decodeBase64url(base64url_unpadded)?.toString('hex')).toBe(hex);
  });

  it.each(rfc4648.alphabet_vectors)('refuses $base64 (the standard alphabet is not base64url)', ({ base64 }) => {
    expect(decodeBase64url(base64)).toBeNull();
  });
});

describe('decodeBase64url is strict about untrusted text', () => {
  it.each([
    ['a length of 1 mod 4', 'Zm9vY'],
    ['non-canonical trailing bits ("Zh" for "f")', 'Zh'],
    ['non-canonical trailing bits ("Zm9" for "fo")', 'Zm9'],
    ['whitespace', 'Zm9v Zm9v'],
    ['a line break', 'Zm9v\nZm9v'],
    ['a dot', 'Zm9v.'],
    ['non-ASCII letters', 'Zm9vé'],
  ])('refuses %s', (_, text) => {
    expect(decodeBase64url(text)).toBeNull();
  });

  it('decodes the empty string to no bytes', () => {
    expect(decodeBase64url('')).toEqual(Buffer.alloc(0));
  });
});

describe('private keys in PEM', () => {
  it('privateKeyToPem and privateKeyFromPem round-trip a key that signs identically (Ed25519 is deterministic)', () => {
    const { privateKey } = generateKeyPair();
    const pem = privateKeyToPem(privateKey);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const message = Buffer.from('round trip');
    expect(sign(null, message, privateKeyFromPem(pem))).toEqual(sign(null, message, privateKey));
  });

  it('privateKeyFromPem refuses a non-Ed25519 key with a TypeError', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => privateKeyFromPem(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString())).toThrow(TypeError);
  });

  it('privateKeyFromPem of the RFC 8032 TEST 1 seed yields the RFC public key', () => {
    const vector = rfc8032.vectors[0]!;
    const pem = privateKeyToPem(privateKeyFromSeed(vector.secret_key));
    expect(rawPublicKey(createPublicKey(privateKeyFromPem(pem))).toString('hex')).toBe(vector.public_key);
  });
});

/**
 * Small-order Ed25519 points (1, 2, 4 and 8) as holder keys: with such a key, a signature whose R is
 * the neutral element and whose S is zero verifies for a fraction of all messages, so anyone could
 * forge that holder's delegations and proofs of possession. keys.ts refuses them by a blocklist
 * (libsodium's), compared with the sign bit cleared.
 */
describe('small-order points', () => {
  // libsodium's blocklist (crypto_core_ed25519 / ge25519_has_small_order), written out independently of keys.ts.
  const BLOCKLIST = [
    ['0 (order 4)', '0000000000000000000000000000000000000000000000000000000000000000'],
    ['1 (order 1, the neutral element)', '0100000000000000000000000000000000000000000000000000000000000000'],
    ['an order-8 point', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'],
    ['the other order-8 point', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a'],
    ['p - 1 (order 2)', 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
    ['p, a non-canonical 0 (order 4)', 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
    ['p + 1, a non-canonical 1 (order 1)', 'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'],
  ] as const;

  /** Every blocklisted encoding, as given and with the sign bit (0x80 on the last byte) set. */
  const ENCODINGS = BLOCKLIST.flatMap(([name, hex]) => {
    const signed = Buffer.from(hex, 'hex');
    signed[31]! |= 0x80;
    return [
      { name, signBit: false, raw: Buffer.from(hex, 'hex') },
      { name: `${name}, sign bit set`, signBit: true, raw: signed },
    ];
  });

  /** The neutral element as an encoded R, and S = 0: a valid signature under any key of small order, for some messages. */
  const FORGED_SIGNATURE = Buffer.concat([Buffer.from([1]), Buffer.alloc(31), Buffer.alloc(32)]);
  const MESSAGES = Array.from({ length: 64 }, (_, i) => Buffer.from(`ppn small-order probe ${i}`));

  it('the probe messages are 64 distinct messages', () => {
    expect(new Set(MESSAGES.map((m) => m.toString('hex'))).size).toBe(64);
  });

  it.each(ENCODINGS)('isSmallOrderPoint recognises $name', ({ raw }) => {
    expect(isSmallOrderPoint(raw)).toBe(true);
  });

  it.each(ENCODINGS)('parsePublicKeyText refuses $name in hex, base64 and base64url', ({ raw }) => {
    const forms = [
      raw.toString('hex'),
      raw.toString('hex').toUpperCase(),
      raw.toString('base64'),
      raw.toString('base64').replace(/=$/, ''),
      raw.toString('base64url'),
      ` ${raw.toString('base64url')}\n`,
    ];
    for (const form of forms) expect(parsePublicKeyText(form), form).toBeNull();
  });

  /**
   * Whether a small-order key is weak depends on the Node.js build under node:crypto, not on its
   * OpenSSL version: Node.js 20 (OpenSSL 3.0) and Node.js 22 (OpenSSL 3.5.9) both verify the forged
   * signature for every message under every one of them; Node.js 24, with the same OpenSSL 3.5.9,
   * refuses every signature under them. keys.ts refuses them by its blocklist either way, so a
   * holder key never depends on which runtime runs it.
   */
  const verifierRefusesSmallOrder = Number(process.versions.node.split('.')[0]) >= 24;

  it.each(ENCODINGS)(
    'empirically, $name is weak under Node.js 20 and 22 (a forged signature with R the neutral element and S = 0 verifies), and refused by the verifier of Node.js 24',
    ({ raw }) => {
      let key;
      try {
        key = publicKeyFromRaw(raw);
      } catch {
        return; // Refused at import: it can never name a holder whose signatures verify.
      }
      const forgedFor = MESSAGES.filter((message) => verify(null, message, key, FORGED_SIGNATURE));
      if (verifierRefusesSmallOrder) expect(forgedFor).toEqual([]);
      else expect(forgedFor.length).toBeGreaterThan(0);
    },
  );

  it('empirically, for 20 freshly generated real keys the forged signature never verifies and isSmallOrderPoint is false', () => {
    for (let i = 0; i < 20; i++) {
      const { publicKey } = generateKeyPair();
      const raw = rawPublicKey(publicKey);
      expect(isSmallOrderPoint(raw)).toBe(false);
      expect(parsePublicKeyText(raw.toString('base64url'))).toEqual(raw);
      for (const message of MESSAGES) expect(verify(null, message, publicKey, FORGED_SIGNATURE)).toBe(false);
    }
  });

  it('isSmallOrderPoint is false for the RFC 8032 public keys, and for anything but 32 bytes', () => {
    for (const vector of rfc8032.vectors) expect(isSmallOrderPoint(Buffer.from(vector.public_key, 'hex'))).toBe(false);
    expect(isSmallOrderPoint(Buffer.alloc(31))).toBe(false);
    expect(isSmallOrderPoint(Buffer.alloc(33))).toBe(false);
    expect(isSmallOrderPoint(Buffer.from('01'.padEnd(66, '0'), 'hex'))).toBe(false);
  });

  it('isSmallOrderPoint compares all 32 bytes: one flipped bit anywhere but the sign bit leaves the list', () => {
    for (const { raw } of ENCODINGS) {
      for (let bit = 0; bit < 255; bit++) {
        const flipped = flipBit(raw, bit);
        // Flipping between two listed encodings (0 and 1 differ in one bit) stays small order; every other flip leaves the list.
        const stillListed = ENCODINGS.some((e) => e.raw.subarray(0, 31).equals(flipped.subarray(0, 31)) && (e.raw[31]! & 0x7f) === (flipped[31]! & 0x7f));
        expect(isSmallOrderPoint(flipped)).toBe(stillListed);
      }
    }
  });

  describe('the blocklist is exactly the small-order points, by arithmetic on edwards25519 (RFC 8032 §5.1)', () => {
    const P = 2n ** 255n - 19n;
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    const mod = (a: bigint) => ((a % P) + P) % P;
    const pow = (base: bigint, exp: bigint): bigint => {
      let result = 1n;
      let b = mod(base);
      for (let e = exp; e > 0n; e >>= 1n) {
        if (e & 1n) result = (result * b) % P;
        b = (b * b) % P;
      }
      return result;
    };
    const inv = (a: bigint) => pow(a, P - 2n);
    const D = mod(-121665n * inv(121666n));
    const SQRT_M1 = pow(2n, (P - 1n) / 4n);
    type Point = { x: bigint; y: bigint };
    const NEUTRAL: Point = { x: 0n, y: 1n };
    const add = (a: Point, b: Point): Point => {
      const t = mod(D * a.x * b.x * a.y * b.y);
      return { x: mod((a.x * b.y + a.y * b.x) * inv(1n + t)), y: mod((a.y * b.y + a.x * b.x) * inv(1n - t)) };
    };
    const times = (k: bigint, point: Point): Point => {
      let result = NEUTRAL;
      let addend = point;
      for (let e = k; e > 0n; e >>= 1n) {
        if (e & 1n) result = add(result, addend);
        addend = add(addend, addend);
      }
      return result;
    };
    /** RFC 8032 §5.1.3 decoding, for a y < p; null when no x exists. */
    const decode = (y: bigint, sign: number): Point | null => {
      const u = mod(y * y - 1n);
      const v = mod(D * y * y + 1n);
      const x2 = mod(u * inv(v));
      let x = pow(x2, (P + 3n) / 8n);
      if (mod(x * x) !== x2) x = mod(x * SQRT_M1);
      if (mod(x * x) !== x2) return null;
      if (x === 0n && sign === 1) return null;
      if (Number(x & 1n) !== sign) x = P - x;
      return { x, y };
    };
    const encode = (point: Point): Buffer => {
      const bytes = Buffer.from(point.y.toString(16).padStart(64, '0'), 'hex').reverse();
      bytes[31]! |= Number(point.x & 1n) << 7;
      return bytes;
    };
    const isOnCurve = (point: Point) => mod(point.y * point.y - point.x * point.x) === mod(1n + D * point.x * point.x * point.y * point.y);
    const equal = (a: Point, b: Point) => a.x === b.x && a.y === b.y;

    /** The eight points of small order: the multiples of an order-8 point, found as [L] of some curve point. */
    let found: Point[] | undefined;
    function smallOrderPoints(): Point[] {
      found ??= searchSmallOrderPoints();
      return found;
    }
    function searchSmallOrderPoints(): Point[] {
      for (let counter = 0; ; counter++) {
        const digest = createHash('sha256').update(`small-order search ${counter}`).digest();
        const point = decode(BigInt(`0x${Buffer.from(digest).reverse().toString('hex')}`) % P, digest[0]! & 1);
        if (!point) continue;
        const torsion = times(L, point);
        if (equal(times(4n, torsion), NEUTRAL)) continue; // order below 8; try another
        return Array.from({ length: 8 }, (_, k) => times(BigInt(k), torsion));
      }
    }

    it('the arithmetic here is right: it derives the RFC 8032 TEST 1 public key from its seed', () => {
      const vector = rfc8032.vectors[0]!;
      const h = createHash('sha512').update(Buffer.from(vector.secret_key, 'hex')).digest().subarray(0, 32);
      h[0]! &= 248;
      h[31]! &= 127;
      h[31]! |= 64;
      const scalar = BigInt(`0x${Buffer.from(h).reverse().toString('hex')}`);
      const base = decode(mod(4n * inv(5n)), 0)!;
      expect(isOnCurve(base)).toBe(true);
      expect(equal(times(L, base), NEUTRAL)).toBe(true);
      expect(encode(times(scalar, base)).toString('hex')).toBe(vector.public_key);
    });

    it('finds eight distinct points on the curve, each of order dividing 8', () => {
      const points = smallOrderPoints();
      expect(new Set(points.map((pt) => encode(pt).toString('hex'))).size).toBe(8);
      for (const pt of points) {
        expect(isOnCurve(pt)).toBe(true);
        expect(equal(times(8n, pt), NEUTRAL)).toBe(true);
      }
    });

    it('every canonical encoding of a small-order point is refused by isSmallOrderPoint and by parsePublicKeyText', () => {
      for (const pt of smallOrderPoints()) {
        const raw = encode(pt);
        expect(isSmallOrderPoint(raw), raw.toString('hex')).toBe(true);
        expect(parsePublicKeyText(raw.toString('base64url')), raw.toString('hex')).toBeNull();
      }
    });

    it('the blocklist is those y values (sign bit cleared) and their non-canonical forms y + p below 2^255, nothing else', () => {
      const ys = new Set(smallOrderPoints().map((pt) => pt.y));
      const expected = new Set<string>();
      for (const y of ys) {
        for (const form of [y, y + P]) {
          if (form < 2n ** 255n) expected.add(Buffer.from(form.toString(16).padStart(64, '0'), 'hex').reverse().toString('hex'));
        }
      }
      expect([...expected].sort()).toEqual(BLOCKLIST.map(([, hex]) => hex).sort());
    });
  });
});
