/**
 * Signing requests (RFC 9421 §3.1) with an Ed25519 key: `signMessage` for any components and
 * parameters (the RFC's own examples), `signRequest` for this product's profile (see verify.ts).
 */
import { createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { serializeDictionary, serializeInnerList, type InnerList, type Item, type Parameters } from 'structured-headers';
import type { Clock } from '../clock.js';
import { encodeBase64url, rawPublicKey } from '../tokens/keys.js';
import { signatureBase, type RequestParts } from './base.js';
import { contentDigest } from './digest.js';

export interface MessageSignatureOptions {
  label: string;
  components: readonly string[];
  /** Signature parameters in the order they are serialized, e.g. `{created, keyid}`. */
  params: Readonly<Record<string, string | number>>;
  privateKey: KeyObject;
}

export interface SignatureHeaderFields {
  'signature-input': string;
  signature: string;
}

export function signMessage(request: RequestParts, options: MessageSignatureOptions): SignatureHeaderFields {
  const input: InnerList = [options.components.map((name): Item => [name, new Map() as Parameters]), new Map(Object.entries(options.params)) as Parameters];
  const base = signatureBase(request, options.components, serializeInnerList(input));
  const signature = sign(null, Buffer.from(base), options.privateKey);
  return {
    'signature-input': serializeDictionary(new Map([[options.label, input]])),
    signature: serializeDictionary(new Map([[options.label, [signature, new Map()]]])),
  };
}

export interface SignRequestOptions {
  /** The final holder's private key. */
  privateKey: KeyObject;
  clock: Clock;
  /** A fresh nonce per request; 16 random bytes in base64url by default. */
  nonce?: () => string;
  /**
   * The holder's `keyid`, `keyIdOf(privateKey)`: a signer of many requests derives it once (deriving
   * the public key on every request is about a third of the cost of signing one).
   */
  keyid?: string;
  label?: string;
}

/** The `keyid` of a holder key: its public key in base64url. */
export function keyIdOf(privateKey: KeyObject): string {
  return encodeBase64url(rawPublicKey(createPublicKey(privateKey)));
}

/**
 * The fields to add to a request under a `pop` token: `Content-Digest` when there is a body, and a
 * signature covering `@method`, `@path`, `@query` (and `content-digest`) with `created`, `nonce`,
 * `keyid` (the holder's public key in base64url) and `alg`.
 */
export function signRequest(request: Omit<RequestParts, 'headers'> & { headers?: RequestParts['headers'] }, options: SignRequestOptions): Record<string, string> {
  const body = request.body ?? new Uint8Array();
  const added: Record<string, string> = body.length > 0 ? { 'content-digest': contentDigest(body) } : {};
  const components = ['@method', '@path', '@query', ...(body.length > 0 ? ['content-digest'] : [])];
  const params = {
    created: Math.floor(options.clock.now() / 1000),
    nonce: options.nonce ? options.nonce() : randomBytes(16).toString('base64url'),
    keyid: options.keyid ?? keyIdOf(options.privateKey),
    alg: 'ed25519',
  };
  const headers = { ...request.headers, ...added };
  const fields = signMessage({ ...request, headers }, { label: options.label ?? 'sig1', components, params, privateKey: options.privateKey });
  return { ...added, ...fields };
}
