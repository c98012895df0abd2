/** `Content-Digest` (RFC 9530) with `sha-256`: how a signature covers a request body. */
import { createHash } from 'node:crypto';
import { isInnerList, parseDictionary, type Dictionary } from 'structured-headers';
import { SignatureError } from './error.js';

const MAX_DIGEST_FIELD_BYTES = 1024;

export function contentDigest(body: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

/** Other algorithms in the field are ignored: only the `sha-256` member is read, and it must match. */
export function checkContentDigest(field: string | undefined, body: Uint8Array): void {
  if (field === undefined) throw mismatch('the request has a body but no Content-Digest field');
  if (Buffer.byteLength(field) > MAX_DIGEST_FIELD_BYTES) throw mismatch(`Content-Digest exceeds ${MAX_DIGEST_FIELD_BYTES} bytes`);
  let digests: Dictionary;
  try {
    digests = parseDictionary(field);
  } catch {
    throw mismatch('Content-Digest is not a structured-field dictionary');
  }
  const member = digests.get('sha-256');
  if (member === undefined) throw mismatch(`Content-Digest has no sha-256 digest (it has ${[...digests.keys()].join(', ') || 'none'})`);
  if (isInnerList(member) || !(member[0] instanceof ArrayBuffer)) throw mismatch('Content-Digest sha-256 is not a byte sequence');
  const expected = createHash('sha256').update(body).digest();
  if (!expected.equals(Buffer.from(member[0]))) throw mismatch('Content-Digest sha-256 does not match the body');
}

function mismatch(message: string): SignatureError {
  return new SignatureError('digest_mismatch', message);
}
