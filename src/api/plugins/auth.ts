/**
 * Authentication, tenant context, rate limiting and scope checks, in that order, for every route
 * that declares `config.scope`. Token signatures are verified once and cached by the token's SHA-256
 * until expiry; expiry, revocation, the root's platform key and the tenant's state are checked on every
 * request (SPEC §5).
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../clock.js';
import type { RevocationList } from '../../control/revocations.js';
import { PpnError } from '../../errors.js';
import type { TenantMetrics } from '../metrics.js';
import type { RateLimiter } from '../rate-limiter.js';
import type { Store } from '../../store/store.js';
import { findTenant, type TenantRow } from '../../store/tenants.js';
import type { PlatformKeyring } from '../../tokens/keyring.js';
import { scopesAllow, type Scope } from '../../tokens/scopes.js';
import { assertTokenCurrent, verifyToken, type VerifiedToken } from '../../tokens/verify.js';

export interface Caller {
  token: VerifiedToken;
  /** The token's tenant (null for platform tokens), as read on this request. */
  tenant: TenantRow | null;
  isPlatformAdmin: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The scope a route requires ('authenticated': any valid token; 'optional': public, but a token
     * sent is checked and becomes the caller); routes without it are public.
     */
    scope?: Scope | 'authenticated' | 'optional';
  }
  interface FastifyRequest {
    caller: Caller | null;
  }
}

export interface AuthOptions {
  store: Store;
  keyring: PlatformKeyring;
  revocations: RevocationList;
  limiter: RateLimiter;
  clock: Clock;
  tenantMetrics: TenantMetrics;
}

const CACHE_LIMIT = 10_000;
const READ_METHODS = new Set(['GET', 'HEAD']);

export function registerAuth(app: FastifyInstance, options: AuthOptions): void {
  const verified = new Map<string, VerifiedToken>();

  function authenticate(header: string | undefined): VerifiedToken {
    const match = header ? /^Bearer +([^\s]+)$/i.exec(header) : null;
    if (!match) throw new PpnError('unauthenticated', 'missing bearer token: send "Authorization: Bearer <token>"');
    const text = match[1]!;
    const now = options.clock.now();
    const hash = createHash('sha256').update(text).digest('base64url');
    let token = verified.get(hash);
    // A platform key retired since the token was cached must fail it as a fresh verification would.
    if (token && !options.keyring.publicKey(token.rootKid)) {
      verified.delete(hash);
      token = undefined;
    }
    if (token) {
      assertTokenCurrent(token, now);
    } else {
      token = verifyToken(text, { platformKey: (kid) => options.keyring.publicKey(kid), now });
      if (verified.size >= CACHE_LIMIT) verified.delete(verified.keys().next().value!);
      verified.set(hash, token);
    }
    return token;
  }

  app.decorateRequest('caller', null);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const required = request.routeOptions.config.scope;
    if (required === undefined) return;
    if (required === 'optional' && request.headers.authorization === undefined) return;
    const token = authenticate(request.headers.authorization);
    request.principal = { tenantId: token.tenantId, tokenId: token.tokenId };
    if (options.revocations.anyRevoked(token.chain.map((link) => link.jti))) {
      throw new PpnError('unauthenticated', 'token has been revoked');
    }
    if (token.proofOfPossession) {
      // Fail closed: this server cannot check possession proofs yet, so such tokens are refused.
      throw new PpnError('unauthenticated', 'token requires proof of possession, which this server does not accept yet');
    }
    let tenant: TenantRow | null = null;
    if (token.tenantId !== null) {
      tenant = (await findTenant(options.store.db, token.tenantId)) ?? null;
      if (!tenant || tenant.state === 'deleted') throw new PpnError('unauthenticated', "token's tenant no longer exists");
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
    if (required !== 'authenticated' && required !== 'optional' && !scopesAllow(token.scopes, required)) {
      throw new PpnError('forbidden', `this action needs scope ${required}; the token has ${token.scopes.join(', ')}`);
    }
    request.caller = { token, tenant, isPlatformAdmin: token.scopes.includes('service:platform-admin') };
  });
}

/** The caller of an authenticated route (the hook guarantees it is set). */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new TypeError('route has no config.scope, so it has no caller');
  return request.caller;
}
