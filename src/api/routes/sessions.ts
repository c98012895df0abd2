/**
 * /v1/sessions (SPEC §5): the tenant's tokens seen in use, and ending one by revoking its token. The
 * tenant comes from the token; platform admins name one with ?tenant_id=. What a list shows was
 * flushed within the last second (src/control/sessions.ts). Ending a session revokes its final
 * block, whether the server issued it or it was delegated offline.
 */
import { Type } from 'typebox';
import type { RouteDeps, TypedApp } from '../deps.js';
import { originOf, requireTenantOf } from '../context.js';
import { decodeCursor, pageOf } from '../pagination.js';
import { Page, ResourceId, TenantId, listOf, strictQuery } from '../schemas.js';
import { revokeToken } from '../../control/tokens.js';
import { notFound } from '../../errors.js';
import { findSession, listSessionRows, type SessionRow } from '../../store/sessions.js';
import { findTenant } from '../../store/tenants.js';

const SessionInfo = Type.Object({
  token_id: Type.String(),
  tenant_id: Type.String(),
  /** The final block's name: an issued token's from its record, a delegated block's from its claims; null when none. */
  name: Type.Union([Type.String(), Type.Null()]),
  subject: Type.String(),
  scope: Type.Array(Type.String()),
  /** Every block id of the token, root first; the last is `token_id`. */
  chain: Type.Array(Type.String()),
  first_seen: Type.String(),
  last_seen: Type.String(),
  last_address: Type.String(),
  request_count: Type.Integer(),
  revoked: Type.Boolean(),
});

const TenantQuery = { tenant_id: Type.Optional(TenantId) };

export function registerSessionRoutes(app: TypedApp, deps: RouteDeps): void {
  const sessionInfo = (row: SessionRow) => {
    const chain = JSON.parse(row.chain) as string[];
    return {
      token_id: row.token_id,
      tenant_id: row.tenant_id,
      name: row.name,
      subject: row.subject,
      scope: JSON.parse(row.scopes) as string[],
      chain,
      first_seen: row.first_seen,
      last_seen: row.last_seen,
      last_address: row.last_address,
      request_count: row.request_count,
      revoked: deps.revocations.anyRevoked(row.tenant_id, chain),
    };
  };

  app.get(
    '/v1/sessions',
    {
      config: { scope: 'service:tenant-admin' },
      schema: { querystring: strictQuery({ ...TenantQuery, ...Page }), response: { 200: listOf(SessionInfo) } },
    },
    async (request) => {
      const tenantId = requireTenantOf(request, request.query.tenant_id);
      if (!(await findTenant(deps.store.db, tenantId))) throw notFound('tenant');
      const limit = request.query.limit ?? 100;
      const rows = await listSessionRows(deps.store.db, tenantId, decodeCursor(request.query.cursor), limit + 1);
      const page = pageOf(rows, limit, (row) => row.token_id);
      return { items: page.items.map(sessionInfo), next_cursor: page.next_cursor };
    },
  );

  app.delete(
    '/v1/sessions/:token_id',
    {
      config: { scope: 'service:tenant-admin' },
      schema: { params: Type.Object({ token_id: ResourceId }), querystring: strictQuery(TenantQuery), response: { 200: SessionInfo } },
    },
    async (request) => {
      const tenantId = requireTenantOf(request, request.query.tenant_id);
      const session = await findSession(deps.store.db, tenantId, request.params.token_id);
      if (!session) throw notFound('session');
      // An issued token's row is marked revoked; a block delegated offline gets a revocation of its
      // id alone. Either way every token below it stops working (src/control/tokens.ts#revokeToken).
      await revokeToken(deps, deps.revocations, originOf(request), tenantId, session.token_id);
      return sessionInfo(session);
    },
  );
}
