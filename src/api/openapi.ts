/**
 * What /openapi.json says about each operation beyond its request and success schemas: an
 * operationId, a tag, a summary, the success answers a route sends without a response schema (204
 * with no body, text), and the problem+json error answers it can give.
 *
 * It lives here, as one table beside routes/access.ts, and reaches the document through
 * @fastify/swagger's `transform`: the routes' own response schemas are what Fastify serialises
 * with, so the error answers are added to the document only (problems are sent already encoded, by
 * src/api/problem.ts). test/api/openapi.test.ts validates the document and checks every operation
 * has all of these; test/api/isolation.test.ts checks every status the server answered is one the
 * document lists for that operation.
 */
import type { FastifySchema } from 'fastify';
import { Type } from 'typebox';
import type { RouteKey } from './routes/access.js';

/** RFC 9457 problem details as src/api/problem.ts sends them; extension members vary by code. */
export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.String(),
    code: Type.String({ description: 'the error code, one of those docs/errors.md lists' }),
    request_id: Type.String(),
  },
  { additionalProperties: true },
);

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (invalid_input)',
  401: 'No valid token (unauthenticated)',
  403: 'The token may not do this, or its tenant is suspended (forbidden, tenant_suspended)',
  404: 'No such resource visible to the caller (not_found)',
  409: 'Conflicts with the current state (conflict, ledger_not_integrated)',
  413: 'Body too large (body_too_large)',
  415: 'Body is not application/json (unsupported_media_type)',
  429: 'Quota, rate limit or connection limit reached (quota_exceeded, rate_limited, too_many_connections)',
  500: 'Internal error (internal)',
  503: 'The store cannot answer, or the ledger is being or failed to be verified (store_unavailable, ledger_verifying, ledger_unverified)',
};

/** The problem+json answers for `statuses`, in the form @fastify/swagger renders as response content. */
export function problemResponses(statuses: readonly number[]): Record<number, unknown> {
  return Object.fromEntries(
    statuses.map((status) => [status, { description: ERROR_DESCRIPTIONS[status] ?? 'Problem', content: { 'application/problem+json': { schema: Problem } } }]),
  );
}

type Tag = 'server' | 'tenants' | 'tokens' | 'sessions' | 'vms' | 'nodes' | 'ledger';

interface Operation {
  operationId: string;
  tag: Tag;
  summary: string;
  /** Error statuses beyond those every operation may answer (400, 429, 500, 503). */
  errors: readonly number[];
  /** Success answers for a route without a response schema, as the document should show them. */
  success?: Record<number, unknown>;
}

/** Every operation may answer these: a bad path or query, a rate limit, an internal error, a store down. */
const ALWAYS = [400, 429, 500, 503] as const;
const AUTHED = [401, 403] as const;
const BODY = [413, 415] as const;

const NO_CONTENT = { 204: { type: 'null', description: 'Done; no body' } };
const text = (description: string) => ({ 200: { description, content: { 'text/plain': { schema: Type.String() } } } });

const op = (operationId: string, tag: Tag, summary: string, errors: readonly number[], success?: Record<number, unknown>): Operation => ({
  operationId,
  tag,
  summary,
  errors,
  success,
});

// prettier-ignore
export const OPERATIONS: Partial<Record<RouteKey, Operation>> = {
  'GET /v1/version':                             op('getVersion', 'server', "The server's release, the oldest agent and client it supports, and its store schema", []),

  'POST /v1/tenants':                            op('createTenant', 'tenants', 'Create a tenant', [...AUTHED, 409, ...BODY]),
  'GET /v1/tenants':                             op('listTenants', 'tenants', 'List tenants', AUTHED),
  'GET /v1/tenants/:tenant_id':                  op('getTenant', 'tenants', 'Read a tenant, with its usage', [...AUTHED, 404]),
  'PATCH /v1/tenants/:tenant_id':                op('updateTenant', 'tenants', "Change a tenant's name, limits or state", [...AUTHED, 404, 409, ...BODY]),
  'DELETE /v1/tenants/:tenant_id':               op('deleteTenant', 'tenants', 'Delete a tenant (with cascade=true, with its VMs, nodes and tokens)', [...AUTHED, 404, 409], NO_CONTENT),

  'POST /v1/tenants/:tenant_id/tokens':          op('issueToken', 'tokens', 'Issue a token of a tenant', [...AUTHED, 404, 409, ...BODY]),
  'GET /v1/tenants/:tenant_id/tokens':           op('listTokens', 'tokens', "List a tenant's tokens", [...AUTHED, 404]),
  'DELETE /v1/tenants/:tenant_id/tokens/:token_id': op('revokeToken', 'tokens', "Revoke a tenant's token or token block", [...AUTHED, 404, 409]),
  'GET /v1/admin/tokens':                        op('listAdminTokens', 'tokens', 'List platform admin tokens', AUTHED),
  'DELETE /v1/admin/tokens/:token_id':           op('revokeAdminToken', 'tokens', 'Revoke a platform admin token', [...AUTHED, 404, 409]),
  'GET /v1/admin/keys':                          op('listPlatformKeys', 'tokens', "The platform's token-signing keys and the ledger's key (public halves)", AUTHED),
  'GET /v1/whoami':                              op('whoAmI', 'tokens', 'Describe the token sent', AUTHED),

  'GET /v1/sessions':                            op('listSessions', 'sessions', "List a tenant's sessions", [...AUTHED, 404]),
  'DELETE /v1/sessions/:token_id':               op('endSession', 'sessions', 'End a session', [...AUTHED, 404, 409]),

  'POST /v1/vms':                                op('createVm', 'vms', 'Create a VM', [...AUTHED, 404, 409, ...BODY]),
  'GET /v1/vms':                                 op('listVms', 'vms', "List a tenant's VMs", [...AUTHED, 404]),
  'GET /v1/vms/:vm_id':                          op('getVm', 'vms', 'Read a VM', [...AUTHED, 404]),
  'DELETE /v1/vms/:vm_id':                       op('deleteVm', 'vms', 'Delete a VM (202 while its node destroys it, 204 when gone)', [...AUTHED, 404, 409]),
  'POST /v1/vms/:vm_id/start':                   op('startVm', 'vms', 'Start a VM', [...AUTHED, 404, 409]),
  'POST /v1/vms/:vm_id/stop':                    op('stopVm', 'vms', 'Stop a VM', [...AUTHED, 404, 409]),
  'GET /v1/vms/:vm_id/console':                  op('getVmConsole', 'vms', "Read a VM's console output", [...AUTHED, 404]),

  'POST /v1/nodes':                              op('enrollNode', 'nodes', 'Enroll a node', [...AUTHED, 404, 409, ...BODY]),
  'POST /v1/nodes/:node_id/heartbeat':           op('sendHeartbeat', 'nodes', "Report a node's state and learn its VMs' desired states", [...AUTHED, 404, 409, ...BODY]),
  'PUT /v1/nodes/:node_id/vms/:vm_id/console':   op('uploadConsole', 'nodes', "Upload a VM's console output", [...AUTHED, 404, 409, ...BODY], NO_CONTENT),
  'GET /v1/nodes':                               op('listNodes', 'nodes', "List a tenant's nodes", [...AUTHED, 404]),
  'GET /v1/nodes/:node_id':                      op('getNode', 'nodes', 'Read a node, with its VMs', [...AUTHED, 404]),
  'DELETE /v1/nodes/:node_id':                   op('deleteNode', 'nodes', 'Remove a node', [...AUTHED, 404, 409], NO_CONTENT),

  'GET /v1/ledger/key':                          op('getLedgerKey', 'ledger', "The ledger's public key, as a signed-note verifier key (text)", [404], text('The verifier key')),
  'GET /v1/ledger/checkpoint':                   op('getLedgerCheckpoint', 'ledger', 'The latest signed checkpoint, a C2SP tlog-checkpoint signed note (text)', [...AUTHED, 404], text('The signed checkpoint note')),
  'GET /v1/ledger/entries':                      op('listLedgerEntries', 'ledger', "List a tenant's ledger entries", [...AUTHED, 404]),
  'GET /v1/ledger/proof/inclusion':              op('getInclusionProof', 'ledger', "An entry's inclusion proof against a tree size", [...AUTHED, 404, 409]),
  'GET /v1/ledger/proof/consistency':            op('getConsistencyProof', 'ledger', 'A consistency proof between two tree sizes', [...AUTHED, 404, 409]),
};

/** The error statuses the document lists for the operation `key`, sorted. */
export function errorStatuses(key: string): number[] {
  const operation = (OPERATIONS as Record<string, Operation | undefined>)[key];
  return operation ? [...new Set([...ALWAYS, ...operation.errors])].sort((a, b) => a - b) : [];
}

/** @fastify/swagger's `transform`: adds each documented route's operationId, tag, summary and answers. */
export function describeOperation({ schema, url, route }: { schema: FastifySchema; url: string; route: { method: string | string[] } }): {
  schema: FastifySchema;
  url: string;
} {
  if (!schema || schema.hide) return { schema, url };
  const method = [route.method].flat()[0]!;
  const key = `${method === 'HEAD' ? 'GET' : method} ${url}`;
  const operation = (OPERATIONS as Record<string, Operation | undefined>)[key];
  if (!operation) throw new TypeError(`${key} has no operation in src/api/openapi.ts: add one`);
  const response = { ...problemResponses(errorStatuses(key)), ...(operation.success ?? {}), ...((schema.response as Record<string, unknown> | undefined) ?? {}) };
  return { schema: { ...schema, operationId: operation.operationId, tags: [operation.tag], summary: operation.summary, response }, url };
}
