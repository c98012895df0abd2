/**
 * Authentication, tenant context, proof of possession, rate limiting and scope checks, in that order,
 * for every route whose row in src/api/routes/access.ts names a scope (its `config.scope`). Token
 * signatures are verified once and cached by the token's SHA-256 until expiry; expiry, revocation, the
 * root's platform key and the tenant's state are checked on every request (SPEC §5).
 *
 * A request that must prove possession (a `pop` token, a `node:agent` token, or a tenant with
 * `require_pop`) is admitted in `preValidation`, once the body has been read, because the signature
 * covers its digest; every other request is admitted in `onRequest`, before its body is read.
 */
import { hash as digestOf } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../clock.js';
import type { RevocationList } from '../../control/revocations.js';
import type { SessionRecorder } from '../../control/sessions.js';
import { PpnError } from '../../errors.js';
import { splitTarget } from '../../httpsig/base.js';
import { SignatureError } from '../../httpsig/error.js';
import { verifyRequestSignature, type AcceptNonce } from '../../httpsig/verify.js';
import { nonceRecordFor } from '../nonce-record.js';
import type { TenantMetrics } from '../metrics.js';
import type { RateLimiter } from '../rate-limiter.js';
import { routeConfigOf } from '../route-config.js';
import type { Store } from '../../store/store.js';
import { findTenantForRequest, type TenantRow } from '../../store/tenants.js';
import { findTokenName } from '../../store/tokens.js';
import type { PlatformKeyring } from '../../tokens/keyring.js';
import { scopesAllow, type Scope } from '../../tokens/scopes.js';
import { assertTokenCurrent, verifyToken, type VerifiedToken } from '../../tokens/verify.js';

export interface Caller {
  token: VerifiedToken;
  /**
   * Each block's name, root first: block 0's from the record of the token the server issued, a
   * delegated block's from its own claims; null where a block has none. The last is the caller's.
   */
  names: (string | null)[];
  /** The token's tenant (null for platform tokens), as read on this request. */
  tenant: TenantRow | null;
  isPlatformAdmin: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The scope a route requires ('authenticated': any valid token; 'optional': public, but a token
     * sent is checked and becomes the caller); routes without it are public. Set from the route's
     * row in src/api/routes/access.ts (a route that says it too must agree).
     */
    scope?: Scope | 'authenticated' | 'optional';
    /** The route checks the bearer itself (/metrics under `serve --metrics-token`): no capability token is looked for. */
    ownBearer?: boolean;
  }
  interface FastifyRequest {
    caller: Caller | null;
    /** A JSON body's bytes as received: a request signature's `content-digest` covers them. */
    rawBody: Buffer | null;
    /** Authenticated, and waiting for the body before its signature can be checked. */
    awaitingProof: { known: KnownToken; tenant: TenantRow | null; why: string } | null;
  }
}

export interface AuthOptions {
  store: Store;
  keyring: PlatformKeyring;
  revocations: RevocationList;
  sessions: SessionRecorder;
  limiter: RateLimiter;
  clock: Clock;
  tenantMetrics: TenantMetrics;
}

/** A verified token and its blocks' names, as cached. */
interface KnownToken {
  token: VerifiedToken;
  names: (string | null)[];
}

const CACHE_LIMIT = 10_000;
const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * Verifies a token's text as every request does: from a cache keyed by the text's SHA-256 when it
 * verified before, else in full. Exported for the benchmark (bench/tokens.ts).
 */
export function cachedTokenVerifier(keyring: PlatformKeyring): (text: string, now: number) => VerifiedToken {
  const verified = new Map<string, VerifiedToken>();
  return (text, now) => {
    // One-shot `hash` (Node ≥ 20.12): no Hash object a request, about 0.4 µs less than createHash.
    const hash = digestOf('sha256', text, 'base64url');
    let token = verified.get(hash);
    // A platform key retired since the token was cached must fail it as a fresh verification would.
    if (token && !keyring.publicKey(token.rootKid)) {
      verified.delete(hash);
      token = undefined;
    }
    if (token) {
      assertTokenCurrent(token, now);
    } else {
      token = verifyToken(text, { platformKey: (kid) => keyring.publicKey(kid), now });
      if (verified.size >= CACHE_LIMIT) verified.delete(verified.keys().next().value!);
      verified.set(hash, token);
    }
    return token;
  };
}

/** How the server is reached: whether platform-admin tokens need a client certificate (`serve --tls-client-ca`). */
export interface TransportPolicy {
  clientCertificateForPlatformAdmin: boolean;
}

export function registerAuth(app: FastifyInstance, options: AuthOptions, transport: TransportPolicy = { clientCertificateForPlatformAdmin: false }): void {
  const verifyCached = cachedTokenVerifier(options.keyring);

  // Names never change, so the root's is read once per verified token and kept beside it.
  const namesOf = new WeakMap<VerifiedToken, (string | null)[]>();

  async function authenticate(header: string | undefined): Promise<KnownToken> {
    const match = header ? /^Bearer +([^\s]+)$/i.exec(header) : null;
    if (!match) throw new PpnError('unauthenticated', 'missing bearer token: send "Authorization: Bearer <token>"');
    const token = verifyCached(match[1]!, options.clock.now());
    let names = namesOf.get(token);
    if (!names) {
      const rootName = await findTokenName(options.store.db, token.chain[0]!.jti);
      names = token.chain.map((link, index) => (index === 0 ? rootName : (link.nam ?? null)));
      namesOf.set(token, names);
    }
    return { token, names };
  }

  app.decorateRequest('caller', null);
  app.decorateRequest('rawBody', null);
  app.decorateRequest('awaitingProof', null);
  keepRawJsonBodies(app);
  const acceptNonce = nonceRecordFor(options.store, options.clock);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const config = routeConfigOf(request);
    const required = config.scope;
    if (required === undefined || config.ownBearer) return;
    if (required === 'optional' && request.headers.authorization === undefined) return;
    const known = await authenticate(request.headers.authorization);
    const { token } = known;
    request.principal = { tenantId: token.tenantId, tokenId: token.tokenId };
    if (
      options.revocations.anyRevoked(
        token.tenantId,
        token.chain.map((link) => link.jti),
      )
    ) {
      throw new PpnError('unauthenticated', 'token has been revoked');
    }
    let tenant: TenantRow | null = null;
    if (token.tenantId !== null) {
      tenant = (await findTenantForRequest(options.store.db, options.store.dialect, token.tenantId)) ?? null;
      if (!tenant || tenant.state === 'deleted') throw new PpnError('unauthenticated', "token's tenant no longer exists");
    }
    const proofNeeded = whyProofIsNeeded(token, tenant);
    if (proofNeeded) {
      request.awaitingProof = { known, tenant, why: proofNeeded };
      return;
    }
    await admit(request, reply, known, tenant);
  });

  // Runs after the body is read (and refused if too large or not JSON), before any validation.
  app.addHook('preValidation', async (request: FastifyRequest, reply: FastifyReply) => {
    const awaiting = request.awaitingProof;
    if (!awaiting) return;
    request.awaitingProof = null;
    await checkPossession(request, awaiting.known.token, awaiting.why, options.clock, acceptNonce);
    await admit(request, reply, awaiting.known, awaiting.tenant);
  });

  /** Rate limit, tenant state and scope; a request that reaches this has proved whatever it must. */
  async function admit(request: FastifyRequest, reply: FastifyReply, { token, names }: KnownToken, tenant: TenantRow | null): Promise<void> {
    const required = routeConfigOf(request).scope;
    if (tenant) {
      const decision = await options.limiter.take(tenant.tenant_id, tenant.api_rate_limit_rpm, options.clock.now());
      // draft-ietf-httpapi-ratelimit-headers: the policy, then what is left of it.
      reply.header('RateLimit-Policy', `"tenant";q=${decision.limit};w=60`);
      reply.header('RateLimit', `"tenant";r=${decision.remaining};t=${decision.resetSeconds}`);
      if (!decision.allowed) {
        options.tenantMetrics.rateLimited(tenant.tenant_id);
        throw new PpnError('rate_limited', `tenant ${tenant.tenant_id} exceeded ${decision.limit} requests per minute`, {
          headers: { 'Retry-After': String(Math.max(1, decision.resetSeconds)) },
          extensions: { retry_after_seconds: Math.max(1, decision.resetSeconds) },
        });
      }
      if (tenant.state === 'suspended' && !READ_METHODS.has(request.method)) {
        throw new PpnError('tenant_suspended', `tenant ${tenant.tenant_id} is suspended: its tokens may only read`);
      }
    }
    // SPEC §5/§7: a node's token acts only as that node, and only node tokens act as nodes (a
    // tenant admin implies node:agent so that it may issue node tokens, not to heartbeat).
    const agentToken = token.scopes.includes('node:agent');
    if (agentToken !== (required === 'node:agent')) {
      throw new PpnError(
        'forbidden',
        agentToken ? 'a node:agent token may only enroll its node, heartbeat and upload consoles' : 'this route is for fleet nodes: it needs a node:agent token',
      );
    }
    const isPlatformAdmin = token.scopes.includes('service:platform-admin');
    // A platform-admin token alone, copied off a laptop, is not enough: the connection must also
    // have presented a certificate the --tls-client-ca signed (Node verified it in the handshake).
    if (isPlatformAdmin && transport.clientCertificateForPlatformAdmin && (request.raw.socket as TLSSocket).authorized !== true) {
      throw new PpnError(
        'client_certificate_required',
        'platform-admin tokens are accepted only on a connection that presents a client certificate signed by the CA the server was given (--tls-client-ca)',
      );
    }
    if (required !== undefined && required !== 'authenticated' && required !== 'optional' && !scopesAllow(token.scopes, required)) {
      throw new PpnError('forbidden', `this action needs scope ${required}; the token has ${token.scopes.join(', ')}`);
    }
    request.caller = { token, names, tenant, isPlatformAdmin };
    // Only admitted requests are a session's use: refused ones are not counted (SPEC §5 sessions).
    options.sessions.record(token, names.at(-1) ?? null, request.ip, options.clock.now());
  }
}

/** Why a request under `token` must prove possession (SPEC §5, require_pop), or null when it need not. */
function whyProofIsNeeded(token: VerifiedToken, tenant: TenantRow | null): string | null {
  if (token.proofOfPossession) return 'the token requires proof of possession';
  if (token.scopes.includes('node:agent')) return 'node:agent tokens require proof of possession';
  if (tenant?.require_pop === 1) return `tenant ${tenant.tenant_id} requires proof of possession (require_pop)`;
  return null;
}

/**
 * SPEC §5: the request carries an RFC 9421 signature by the final holder's key. Checked before the
 * rate limit, so a forged or replayed request counts against no tenant. A SignatureError becomes a
 * 401 naming its code in `signature_error`, as a TokenError's is named in `token_error`.
 */
async function checkPossession(request: FastifyRequest, token: VerifiedToken, why: string, clock: Clock, acceptNonce: AcceptNonce): Promise<void> {
  const { path, query } = splitTarget(request.url);
  const parts = { method: request.method, path, query, headers: request.headers, body: request.rawBody ?? undefined };
  try {
    await verifyRequestSignature(parts, { holderKey: token.subject, clock, acceptNonce });
  } catch (error) {
    if (!(error instanceof SignatureError)) throw error;
    throw new PpnError('unauthenticated', `${why}: ${error.message}`, { extensions: { signature_error: error.code } });
  }
}

/**
 * JSON bodies are read as bytes and kept beside the parsed value, since a request signature's digest
 * covers the bytes as sent. Parsing is Fastify's own (prototype-poisoning checks included).
 */
function keepRawJsonBodies(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    request.rawBody = body as Buffer;
    // Fastify's parser answers through `done`; its return value carries nothing.
    void parseJson(request, body as unknown as string, done);
  });
}

/** The caller of an authenticated route (the hook guarantees it is set). */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new TypeError('route has no config.scope, so it has no caller');
  return request.caller;
}
