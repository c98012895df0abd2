/** What routes derive from the caller: the ledger origin and the tenant a request acts in. */
import type { FastifyRequest } from 'fastify';
import type { Origin } from '../control/context.js';
import { PpnError, invalidInput } from '../errors.js';
import { callerOf, type Caller } from './plugins/auth.js';

export function originOf(request: FastifyRequest): Origin {
  return originFor(callerOf(request), request.id);
}

/** The ledger origin of a request `caller` made, with the request's id (the agent listener has no FastifyRequest). */
export function originFor({ token, names }: Caller, requestId: string): Origin {
  const name = names.at(-1) ?? null;
  return { actor: { token_id: token.tokenId, subject: token.subject, scope: token.scopes, ...(name !== null ? { name } : {}) }, requestId };
}

/**
 * The tenant a request acts in. It always comes from the token; only a platform admin may name one
 * (`?tenant_id=`), and gets null ("all tenants") when it does not. A tenant token naming another
 * tenant is refused the same way whether that tenant exists or not, so it learns nothing.
 */
export function tenantScopeOf(request: FastifyRequest, named: string | undefined): string | null {
  const caller = callerOf(request);
  if (caller.isPlatformAdmin) return named ?? null;
  if (named !== undefined && named !== caller.token.tenantId) {
    throw new PpnError('forbidden', 'only a platform admin may choose the tenant; tenant tokens act in their own tenant');
  }
  return caller.token.tenantId!;
}

/** Like tenantScopeOf, for actions that need exactly one tenant. */
export function requireTenantOf(request: FastifyRequest, named: string | undefined): string {
  const tenantId = tenantScopeOf(request, named);
  if (tenantId === null) throw invalidInput('tenant_id', 'a platform admin must name the tenant with ?tenant_id=');
  return tenantId;
}

/** A tenant token may see only its own tenant: another tenant's id is answered as not found. */
export function assertOwnTenant(request: FastifyRequest, tenantId: string): void {
  const caller = callerOf(request);
  if (!caller.isPlatformAdmin && caller.token.tenantId !== tenantId) throw new PpnError('not_found', 'tenant not found');
}
