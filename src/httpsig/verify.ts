/**
 * Proof of possession (SPEC §5): a request under a `pop` token carries an RFC 9421 signature by the
 * final holder's Ed25519 key. This product's profile of RFC 9421, on top of §3.2's verification:
 *
 * - exactly one signature label; `alg`, when present, is `ed25519`;
 * - it covers `@method`, `@path` and `@query`, and `content-digest` (RFC 9530, `sha-256`, checked
 *   against the body) whenever there is a body;
 * - `created` is within 60 s of the server's clock either way, and `expires`, when present, has not
 *   passed;
 * - `keyid` is the holder's public key in base64url, as a token's `sub` names it;
 * - `nonce` is accepted once: the caller's `acceptNonce` records it until the signature could no
 *   longer be accepted anyway, and answers false when it has seen it (SPEC: on any replica).
 *
 * Checks run cheapest first; the nonce is recorded only after the signature verifies, so nobody but
 * the holder can use up a nonce. Pure: the clock and the nonce record are passed in.
 */
import { verify, type KeyObject } from 'node:crypto';
import type { Clock } from '../clock.js';
import { decodeBase64url, holderPublicKey } from '../tokens/keys.js';
import { signatureBase, type RequestParts } from './base.js';
import { checkContentDigest } from './digest.js';
import { SignatureError, type SignatureErrorCode } from './error.js';
import { fieldValue, malformed, parseSignatureFields, type SignatureFields } from './fields.js';

/** How far `created` may be from the server's clock, and so how long a nonce must be remembered. */
export const SIGNATURE_WINDOW_SECONDS = 60;
export const MAX_NONCE_LENGTH = 128;
const REQUIRED_COMPONENTS = ['@method', '@path', '@query'] as const;

/**
 * Records `nonce` for `keyid` until `expiresAt` (milliseconds since the epoch); false when it is
 * already recorded. The store-backed record (shared across replicas) plugs in here.
 */
export type AcceptNonce = (keyid: string, nonce: string, expiresAt: number) => Promise<boolean>;

export interface ProofOptions {
  /** The final holder's public key in base64url: the token's last `sub`. */
  holderKey: string;
  clock: Clock;
  acceptNonce: AcceptNonce;
}

export interface VerifiedProof {
  label: string;
  keyid: string;
  nonce: string;
  /** Seconds since the epoch. */
  created: number;
  components: string[];
}

interface ProfileParams {
  created: number;
  keyid: string;
  nonce: string;
  expires: number | undefined;
}

/**
 * RFC 9421 §3.2 alone, for one Ed25519 signature by `publicKey`: the base is rebuilt from the request
 * and the signature checked, with none of this product's requirements. The profile below adds them.
 */
export function verifyMessageSignature(request: RequestParts, publicKey: KeyObject): SignatureFields {
  const fields = parseSignatureFields(request.headers);
  checkSignature(request, fields, publicKey);
  return fields;
}

export async function verifyRequestSignature(request: RequestParts, options: ProofOptions): Promise<VerifiedProof> {
  assertHolderKey(options.holderKey);
  return concludeExamination(await examineRequestSignature(request, options.clock), options.holderKey, options.acceptNonce);
}

/** A refusal as plain data, so that an examination can cross a `postMessage` (src/api/agent-listener/). */
export interface Refusal {
  code: SignatureErrorCode;
  message: string;
}

/**
 * What can be learnt of a request's signature without its token: either a refusal, or the proof it
 * would be if `keyid` turns out to be the holder's. `afterKeyCheck` is a refusal found by checks
 * that today's order puts after the key check (digest, signature), kept back so that a request
 * signed by the wrong key is still answered `wrong_key` first.
 */
export type Examination = { refusal: Refusal } | { proof: VerifiedProof; expiresAt: number; afterKeyCheck: Refusal | null };

/**
 * Every check that needs no token: the fields, the profile's parameters and components, the time
 * window, the content digest, and the Ed25519 signature by the key `keyid` names (attacker-chosen:
 * a pass here proves nothing until concludeExamination has matched it to the holder's key).
 */
export async function examineRequestSignature(request: RequestParts, clock: Clock): Promise<Examination> {
  let fields: SignatureFields;
  let params: ProfileParams;
  try {
    fields = parseSignatureFields(request.headers);
    params = readParams(fields.params);
    checkProfile(fields, params, request.body, clock);
  } catch (error) {
    return { refusal: refusalOf(error) };
  }
  const body = request.body ?? new Uint8Array();
  let afterKeyCheck: Refusal | null = null;
  try {
    if (body.length > 0 || fields.components.includes('content-digest')) {
      checkContentDigest(fieldValue(request.headers, 'content-digest'), body);
    }
    // keyid is the sender's choice here: 32 bytes that are no Ed25519 point fail as a bad signature.
    // Keys it names enter holderPublicKey's bounded cache; on the agent listener that is the
    // worker's own copy of the module, so a sender cycling keyids costs the API's thread nothing.
    await checkSignatureOffThread(request, fields, keyNamed(params.keyid, fields));
  } catch (error) {
    afterKeyCheck = refusalOf(error);
  }
  const proof = { label: fields.label, keyid: params.keyid, nonce: params.nonce, created: params.created, components: fields.components };
  return { proof, expiresAt: (params.created + SIGNATURE_WINDOW_SECONDS) * 1000, afterKeyCheck };
}

/** The checks that need the token: `keyid` is its final holder's key, then the nonce is fresh. */
export async function concludeExamination(examination: Examination, holderKey: string, acceptNonce: AcceptNonce): Promise<VerifiedProof> {
  if ('refusal' in examination) throw errorOf(examination.refusal);
  const { proof, expiresAt, afterKeyCheck } = examination;
  if (proof.keyid !== holderKey) {
    throw new SignatureError('wrong_key', "keyid is not the token holder's public key: the final holder must sign");
  }
  if (afterKeyCheck) throw errorOf(afterKeyCheck);
  if (!(await acceptNonce(proof.keyid, proof.nonce, expiresAt))) {
    throw new SignatureError('nonce_reused', 'this nonce was already used: sign every request with a fresh nonce');
  }
  return proof;
}

function keyNamed(keyid: string, fields: SignatureFields): KeyObject {
  try {
    return holderPublicKey(keyid);
  } catch {
    throw invalidSignature(fields);
  }
}

function assertHolderKey(holderKey: string): void {
  const holder = decodeBase64url(holderKey);
  if (holder === null || holder.length !== 32) throw new TypeError('holderKey must be a 32-byte public key in base64url');
}

/** The required components and the time window (SPEC §5: `created` within 60 s either way). */
function checkProfile(fields: SignatureFields, params: ProfileParams, body: Uint8Array | undefined, clock: Clock): void {
  const required = body !== undefined && body.length > 0 ? [...REQUIRED_COMPONENTS, 'content-digest'] : REQUIRED_COMPONENTS;
  const missing = required.filter((name) => !fields.components.includes(name));
  if (missing.length > 0) throw new SignatureError('components_missing', `the signature must cover ${missing.join(', ')}`);
  const now = clock.now();
  const window = SIGNATURE_WINDOW_SECONDS * 1000;
  if (now - params.created * 1000 > window) {
    throw new SignatureError('signature_expired', `the signature was created more than ${SIGNATURE_WINDOW_SECONDS} s ago`);
  }
  if (params.created * 1000 - now > window) {
    throw new SignatureError('signature_not_yet_valid', `the signature was created more than ${SIGNATURE_WINDOW_SECONDS} s in the future`);
  }
  if (params.expires !== undefined && now >= params.expires * 1000) throw new SignatureError('signature_expired', 'the signature has expired');
}

function refusalOf(error: unknown): Refusal {
  if (error instanceof SignatureError) return { code: error.code, message: error.message };
  throw error;
}

function errorOf(refusal: Refusal): SignatureError {
  return new SignatureError(refusal.code, refusal.message);
}

function checkSignature(request: RequestParts, fields: SignatureFields, publicKey: KeyObject): void {
  const base = signatureBase(request, fields.components, fields.signatureParams);
  if (!verify(null, Buffer.from(base), publicKey, fields.signature)) throw invalidSignature(fields);
}

/**
 * The same check with the Ed25519 verification run on libuv's thread pool (node:crypto's callback
 * form): the server's event loop goes on answering other requests for the ~60 µs it takes, which is
 * most of a signed request's own work. Every signed request (a node's heartbeat every 10 s, a `pop`
 * token's every call) would otherwise hold every other request back by that much.
 */
async function checkSignatureOffThread(request: RequestParts, fields: SignatureFields, publicKey: KeyObject): Promise<void> {
  const base = signatureBase(request, fields.components, fields.signatureParams);
  const valid = await new Promise<boolean>((resolve, reject) => {
    verify(null, Buffer.from(base), publicKey, fields.signature, (error, result) => (error ? reject(error) : resolve(result)));
  });
  if (!valid) throw invalidSignature(fields);
}

function invalidSignature(fields: SignatureFields): SignatureError {
  return new SignatureError('signature_invalid', `signature "${fields.label}" does not verify over the request`);
}

/** The parameters the profile requires (RFC 9421 §2.3); others, such as `tag`, are signed and ignored. */
function readParams(params: ReadonlyMap<string, unknown>): ProfileParams {
  const alg = params.get('alg');
  if (alg !== undefined && alg !== 'ed25519') {
    throw new SignatureError('algorithm_unsupported', `alg must be "ed25519"; got ${typeof alg === 'string' ? JSON.stringify(alg) : `a ${typeof alg}`}`);
  }
  const created = params.get('created');
  if (!isSeconds(created)) throw malformed('created is required: a whole number of seconds since the epoch');
  const expires = params.get('expires');
  if (expires !== undefined && !isSeconds(expires)) throw malformed('expires is not a whole number of seconds since the epoch');
  const keyid = params.get('keyid');
  const key = typeof keyid === 'string' ? decodeBase64url(keyid) : null;
  if (key === null || key.length !== 32) throw malformed("keyid is required: the holder's 32-byte public key in base64url");
  const nonce = params.get('nonce');
  if (typeof nonce !== 'string' || nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH) {
    throw malformed(`nonce is required: a string of 1 to ${MAX_NONCE_LENGTH} characters`);
  }
  return { created, keyid: keyid as string, nonce, expires };
}

function isSeconds(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}
