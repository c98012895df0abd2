/**
 * RFC 9421 request signatures in the browser, with WebCrypto: the same profile as the server's
 * src/httpsig/sign.ts `signRequest` (docs/design/request-signatures.md). Covered components
 * `@method`, `@path`, `@query`, and `content-digest` (RFC 9530, `sha-256`) when there is a body;
 * parameters `created`, `nonce`, `keyid`, `alg`, in that order; label `sig1`.
 *
 * The parameters are serialized by hand: every value is an integer, or a base64url or fixed string
 * that needs no escaping in an RFC 9651 string. test/console/signing.test.ts checks that the server's
 * verifier accepts what this produces.
 */

/** A holder key imported with `importHolderKey`: WebCrypto keeps its bytes out of reach of scripts. */
export type HolderKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

export interface SignedRequest {
  method: string;
  /** The path as sent, e.g. `URL.pathname`. */
  path: string;
  /** The query as sent, without the `?` (`URL.search.slice(1)`). */
  query: string;
  body?: Uint8Array<ArrayBuffer> | undefined;
}

export interface SignOptions {
  key: HolderKey;
  /** The holder's public key in base64url: the token's last `sub`. */
  keyid: string;
  /** Milliseconds since the epoch. */
  now: number;
  /** 16 random bytes in base64url unless given. */
  nonce?: string;
}

const encoder = new TextEncoder();

export function encodeBase64url(bytes: Uint8Array): string {
  return encodeBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function decodeBase64url(text: string): Uint8Array<ArrayBuffer> {
  const standard = text.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(standard + '='.repeat((4 - (standard.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

/** Standard base64, strictly: null unless it is the canonical encoding of some bytes. */
export function decodeBase64(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return encodeBase64(bytes) === text ? bytes : null;
}

function encodeBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** `Content-Digest` of a body, as src/httpsig/digest.ts computes it. */
export async function contentDigest(body: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
  return `sha-256=:${encodeBase64(digest)}:`;
}

/** The header fields to add to the request: `Content-Digest` with a body, `Signature-Input`, `Signature`. */
export async function signRequest(request: SignedRequest, options: SignOptions): Promise<Record<string, string>> {
  const body = request.body ?? new Uint8Array();
  const added: Record<string, string> = {};
  const lines = [`"@method": ${request.method}`, `"@path": ${request.path === '' ? '/' : request.path}`, `"@query": ?${request.query}`];
  const components = ['"@method"', '"@path"', '"@query"'];
  if (body.length > 0) {
    added['content-digest'] = await contentDigest(body);
    lines.push(`"content-digest": ${added['content-digest']}`);
    components.push('"content-digest"');
  }
  const nonce = options.nonce ?? encodeBase64url(crypto.getRandomValues(new Uint8Array(16)));
  const params = `(${components.join(' ')});created=${Math.floor(options.now / 1000)};nonce="${nonce}";keyid="${options.keyid}";alg="ed25519"`;
  lines.push(`"@signature-params": ${params}`);
  const signature = new Uint8Array(await crypto.subtle.sign('Ed25519', options.key, encoder.encode(lines.join('\n'))));
  return { ...added, 'signature-input': `sig1=${params}`, signature: `sig1=:${encodeBase64(signature)}:` };
}

/** A PKCS#8 PEM (`ppn keygen`'s private key file) as a non-extractable Ed25519 signing key. */
export async function importHolderKey(pem: string): Promise<HolderKey> {
  const match = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(pem);
  if (!match) throw new KeyFileError('not_pkcs8');
  const der = Uint8Array.from(atob(match[1]!.replace(/\s+/g, '')), (c) => c.charCodeAt(0));
  try {
    return await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
  } catch {
    throw new KeyFileError('not_ed25519');
  }
}

/**
 * Whether `key` is the private half of `publicKey` (base64url, 32 bytes): it signs a challenge and
 * checks it with the public key, since a non-extractable key cannot tell its public half.
 */
export async function keyMatches(key: HolderKey, publicKey: string): Promise<boolean> {
  try {
    const verifier = await crypto.subtle.importKey('raw', decodeBase64url(publicKey), { name: 'Ed25519' }, false, ['verify']);
    const challenge = crypto.getRandomValues(new Uint8Array(32));
    const signature = await crypto.subtle.sign('Ed25519', key, challenge);
    return await crypto.subtle.verify('Ed25519', verifier, signature, challenge);
  } catch {
    return false;
  }
}

export class KeyFileError extends Error {
  constructor(readonly code: 'not_pkcs8' | 'not_ed25519') {
    super(code === 'not_pkcs8' ? 'the file is not a PKCS#8 PEM private key' : 'the key is not an Ed25519 private key');
    this.name = 'KeyFileError';
  }
}
