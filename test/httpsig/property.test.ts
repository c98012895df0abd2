/**
 * Properties of request signing (SPEC §5, RFC 9421) over random requests: what the signer makes the
 * verifier accepts, and flipping any single bit of the signature, body, path, query or method makes
 * it refuse, with a SignatureError (never an uncaught exception).
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import type { RequestParts } from '../../src/httpsig/base.js';
import { SignatureError } from '../../src/httpsig/error.js';
import { signRequest } from '../../src/httpsig/sign.js';
import { verifyRequestSignature } from '../../src/httpsig/verify.js';
import { encodeBase64url, rawPublicKey } from '../../src/tokens/keys.js';

const holder = generateKeyPairSync('ed25519');
const holderKey = encodeBase64url(rawPublicKey(holder.publicKey));
const T0 = Date.parse('2026-03-01T12:00:00Z');

const requestArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'),
  path: fc.stringMatching(/^\/[A-Za-z0-9._~%!$&'()*+,;=:@/-]{0,40}$/),
  query: fc.stringMatching(/^[A-Za-z0-9._~%!$&'()*+,;=:@/?-]{0,40}$/),
  body: fc.uint8Array({ maxLength: 200 }),
  skewSeconds: fc.integer({ min: -60, max: 60 }),
});
type Generated = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function signed(generated: { method: string; path: string; query: string; body: Uint8Array }): RequestParts {
  const request: RequestParts = { ...generated, headers: { host: 'example.com' } };
  return { ...request, headers: { ...request.headers, ...signRequest(request, { privateKey: holder.privateKey, clock: new ManualClock(T0) }) } };
}

function verifyAt(request: RequestParts, skewSeconds = 0) {
  return verifyRequestSignature(request, { holderKey, clock: new ManualClock(T0 + skewSeconds * 1000), acceptNonce: async () => true });
}

/** The string with one bit of one character's code flipped (ASCII stays ASCII). */
function flipChar(text: string, index: number, bit: number): string {
  const at = index % text.length;
  return text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ (1 << (bit % 7))) + text.slice(at + 1);
}

async function expectRefused(request: RequestParts): Promise<void> {
  const error = await verifyAt(request).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SignatureError);
}

describe('request signing properties', () => {
  it('a signed request verifies anywhere in the 60 s window', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, async (generated: Generated) => {
        await expect(verifyAt(signed(generated), generated.skewSeconds)).resolves.toMatchObject({ keyid: holderKey });
      }),
    );
  });

  it('any bit flipped in the signature is refused', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, fc.nat(63), fc.nat(7), async (generated, byte, bit) => {
        const request = signed(generated);
        const [label, value] = (request.headers.signature as string).split('=', 2) as [string, string];
        const bytes = Buffer.from(value.slice(1), 'base64');
        bytes[byte]! ^= 1 << bit;
        await expectRefused({ ...request, headers: { ...request.headers, signature: `${label}=:${bytes.toString('base64')}:` } });
      }),
    );
  });

  it('any bit flipped in the body is refused', async () => {
    await fc.assert(
      fc.asyncProperty(
        requestArb.filter((g) => g.body.length > 0),
        fc.nat(),
        fc.nat(7),
        async (generated, index, bit) => {
          const request = signed(generated);
          const body = Uint8Array.from(generated.body);
          body[index % body.length]! ^= 1 << bit;
          await expectRefused({ ...request, body });
        },
      ),
    );
  });

  it('any bit flipped in the path, query or method is refused', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, fc.constantFrom('path', 'query', 'method'), fc.nat(), fc.nat(6), async (generated, part, index, bit) => {
        fc.pre(generated[part].length > 0);
        const request = signed(generated);
        await expectRefused({ ...request, [part]: flipChar(generated[part], index, bit) });
      }),
    );
  });

  it('any text in Signature, Signature-Input or Content-Digest ends in a SignatureError, never another exception', async () => {
    // Pieces of real fields, shuffled and cut, reach deeper into the parsers than random text alone.
    const piece = fc.constantFrom(
      'sig1=',
      '(',
      ')',
      '"@method"',
      '"constructor"',
      '"@query"',
      ';created=',
      ';keyid=',
      ';nonce="n"',
      ':AAAA:',
      ', ',
      '1772366400',
      '?1',
      '%"x"',
      '@1',
      '"',
      ';',
      '=',
    );
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(piece, { maxLength: 30 }).map((parts) => parts.join('')),
    );
    await fc.assert(
      fc.asyncProperty(requestArb, text, text, text, async (generated, input, signature, digest) => {
        const request = signed(generated);
        const headers = { ...request.headers, 'signature-input': input, signature, 'content-digest': digest };
        const outcome = await verifyAt({ ...request, headers }).then(
          () => null,
          (e: unknown) => e,
        );
        if (outcome !== null) expect(outcome).toBeInstanceOf(SignatureError);
      }),
    );
  });
});
