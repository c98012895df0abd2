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
import { concludeExamination, verifyRequestSignature, type AcceptNonce, type Examination } from '../../httpsig/verify.js';
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
  acceptNonce: AcceptNonce;
  clock: Clock;
  tenantMetrics: TenantMetrics;
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

/** What admitting a request needs to know of it, wherever it arrived (this app, or the agent listener). */
export interface RequestFacts {
  method: string;
  /** The client's address, for the session record. */
  ip: string;
  /** The route's config.scope. */
  scope: Scope | 'authenticated' | 'optional' | undefined;
  /** Sets a response header (the rate limit's). */
  header(name: string, value: string): void;
  /** The connection presented a client certificate that Node verified (`serve --tls-client-ca`). */
  clientCertified(): boolean;
}

/** A bearer token verified, with its blocks' names. */
export interface KnownToken {
  token: VerifiedToken;
  names: (string | null)[];
}

/**
 * The checks the hooks below run, one by one, for the agent listener's main-thread side
 * (src/api/agent-listener/answer.ts), which runs them in the same order on calls its worker passes on.
 */
export interface AuthChecks {
  /** The bearer token, verified (from the cache when it verified before). */
  authenticate(header: string | undefined): Promise<KnownToken>;
  /** Revocation and the tenant's existence, on every request; the token's tenant as read now. */
  checkStanding(token: VerifiedToken): Promise<TenantRow | null>;
  whyProofIsNeeded(token: VerifiedToken, tenant: TenantRow | null): string | null;
  /** The possession checks that need the token, on a signature its worker examined (src/httpsig/verify.ts). */
  concludePossession(examination: Examination, token: VerifiedToken, why: string): Promise<void>;
  /** Rate limit, tenant state and scope; a request that reaches this has proved whatever it must. */
  admit(known: KnownToken, tenant: TenantRow | null, facts: RequestFacts): Promise<Caller>;
}

export function registerAuth(app: FastifyInstance, options: AuthOptions, transport: TransportPolicy = { clientCertificateForPlatformAdmin: false }): AuthChecks {
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

  async function checkStanding(token: VerifiedToken): Promise<TenantRow | null> {
    if (
      options.revocations.anyRevoked(
        token.tenantId,
        token.chain.map((link) => link.jti),
      )
    ) {
      throw new PpnError('unauthenticated', 'token has been revoked');
    }
    if (token.tenantId === null) return null;
    const tenant = await findTenantForRequest(options.store.db, options.store.dialect, token.tenantId);
    if (!tenant || tenant.state === 'deleted') throw new PpnError('unauthenticated', "token's tenant no longer exists");
    return tenant;
  }

  app.decorateRequest('caller', null);
  app.decorateRequest('awaitingProof', null);
  const { acceptNonce } = options;

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const config = routeConfigOf(request);
    const required = config.scope;
    if (required === undefined || config.ownBearer) return;
    if (required === 'optional' && request.headers.authorization === undefined) return;
    const known = await authenticate(request.headers.authorization);
    const { token } = known;
    request.principal = { tenantId: token.tenantId, tokenId: token.tokenId };
    const tenant = await checkStanding(token);
    const proofNeeded = whyProofIsNeeded(token, tenant);
    if (proofNeeded) {
      request.awaitingProof = { known, tenant, why: proofNeeded };
      return;
    }
    request.caller = await admit(known, tenant, factsOf(request, reply));
  });

  // Runs after the body is read (and refused if too large or not JSON), before any validation.
  app.addHook('preValidation', async (request: FastifyRequest, reply: FastifyReply) => {
    const awaiting = request.awaitingProof;
    if (!awaiting) return;
    request.awaitingProof = null;
    await checkPossession(request, awaiting.known.token, awaiting.why, options.clock, acceptNonce);
    request.caller = await admit(awaiting.known, awaiting.tenant, factsOf(request, reply));
  });

  async function admit({ token, names }: KnownToken, tenant: TenantRow | null, facts: RequestFacts): Promise<Caller> {
    const required = facts.scope;
    if (tenant) {
      const decision = await options.limiter.take(tenant.tenant_id, tenant.api_rate_limit_rpm, options.clock.now());
      // draft-ietf-httpapi-ratelimit-headers: the policy, then what is left of it.
      facts.header('RateLimit-Policy', `"tenant";q=${decision.limit};w=60`);
      facts.header('RateLimit', `"tenant";r=${decision.remaining};t=${decision.resetSeconds}`);
      if (!decision.allowed) {
        options.tenantMetrics.rateLimited(tenant.tenant_id);
        throw new PpnError('rate_limited', `tenant ${tenant.tenant_id} exceeded ${decision.limit} requests per minute`, {
          headers: { 'Retry-After': String(Math.max(1, decision.resetSeconds)) },
          extensions: { retry_after_seconds: Math.max(1, decision.resetSeconds) },
        });
      }
      if (tenant.state === 'suspended' && !READ_METHODS.has(facts.method)) {
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
    if (isPlatformAdmin && transport.clientCertificateForPlatformAdmin && !facts.clientCertified()) {
      throw new PpnError(
        'client_certificate_required',
        'platform-admin tokens are accepted only on a connection that presents a client certificate signed by the CA the server was given (--tls-client-ca)',
      );
    }
    if (required !== undefined && required !== 'authenticated' && required !== 'optional' && !scopesAllow(token.scopes, required)) {
      throw new PpnError('forbidden', `this action needs scope ${required}; the token has ${token.scopes.join(', ')}`);
    }
    // Only admitted requests are a session's use: refused ones are not counted (SPEC §5 sessions).
    options.sessions.record(token, names.at(-1) ?? null, facts.ip, options.clock.now());
    return { token, names, tenant, isPlatformAdmin };
  }

  async function concludePossession(examination: Examination, token: VerifiedToken, why: string): Promise<void> {
    try {
      await concludeExamination(examination, token.subject, acceptNonce);
    } catch (error) {
      throw possessionRefusal(error, why);
    }
  }

  return { authenticate, checkStanding, whyProofIsNeeded, concludePossession, admit };
}

function factsOf(request: FastifyRequest, reply: FastifyReply): RequestFacts {
  return {
    method: request.method,
    ip: request.ip,
    scope: routeConfigOf(request).scope,
    header: (name, value) => void reply.header(name, value),
    clientCertified: () => (request.raw.socket as TLSSocket).authorized === true,
  };
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
 * rate limit, so a forged or replayed request counts against no tenant.
 */
async function checkPossession(request: FastifyRequest, token: VerifiedToken, why: string, clock: Clock, acceptNonce: AcceptNonce): Promise<void> {
  const { path, query } = splitTarget(request.url);
  const parts = { method: request.method, path, query, headers: request.headers, body: request.rawBody ?? undefined };
  try {
    await verifyRequestSignature(parts, { holderKey: token.subject, clock, acceptNonce });
  } catch (error) {
    throw possessionRefusal(error, why);
  }
}

/** A SignatureError becomes a 401 naming its code in `signature_error`, as a TokenError's is named in `token_error`. */
function possessionRefusal(error: unknown, why: string): unknown {
  if (!(error instanceof SignatureError)) return error;
  return new PpnError('unauthenticated', `${why}: ${error.message}`, { extensions: { signature_error: error.code } });
}

/** The caller of an authenticated route (the hook guarantees it is set). */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new TypeError('route has no config.scope, so it has no caller');
  return request.caller;
}
