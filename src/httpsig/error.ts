/**
 * Why a request's proof of possession (an RFC 9421 HTTP Message Signature, SPEC §5) was refused.
 * A closed set of stable codes; at the API each becomes 401 `unauthenticated` with the code beside it.
 *
 * | code                    | meaning                                                                                   |
 * |-------------------------|-------------------------------------------------------------------------------------------|
 * | signature_missing       | no `Signature` or no `Signature-Input` field                                              |
 * | signature_malformed     | a field is too large, not a structured dictionary, has other than one label, or a member  |
 * |                         | or parameter of the wrong type or form (created, keyid, nonce, expires, components)       |
 * | algorithm_unsupported   | `alg` names an algorithm other than `ed25519`                                             |
 * | components_missing      | the signature does not cover `@method`, `@path`, `@query`, and `content-digest` with a body |
 * | signature_expired       | `created` is more than 60 s before the server's clock, or `expires` has passed           |
 * | signature_not_yet_valid | `created` is more than 60 s after the server's clock                                      |
 * | wrong_key               | `keyid` is not the final holder's public key                                              |
 * | digest_mismatch         | `Content-Digest` is absent, has no `sha-256`, or does not match the body                  |
 * | signature_invalid       | the Ed25519 signature does not verify over the signature base                             |
 * | nonce_reused            | the nonce was already accepted for this key within the window                             |
 */
export const SIGNATURE_ERROR_CODES = [
  'signature_missing',
  'signature_malformed',
  'algorithm_unsupported',
  'components_missing',
  'signature_expired',
  'signature_not_yet_valid',
  'wrong_key',
  'digest_mismatch',
  'signature_invalid',
  'nonce_reused',
] as const;

export type SignatureErrorCode = (typeof SIGNATURE_ERROR_CODES)[number];

export class SignatureError extends Error {
  readonly code: SignatureErrorCode;
  constructor(code: SignatureErrorCode, message: string) {
    super(message);
    this.name = 'SignatureError';
    this.code = code;
  }
}
