/**
 * /v1/tenants/{id}/tokens, /v1/admin/tokens, /v1/admin/keys and /v1/whoami (SPEC §5). The platform's
 * keys are changed only on a server's machine (`service-vm-tenant keys`); the API shows their public
 * halves.
 */
import { Type } from 'typebox';
import type { RouteDeps, TypedApp } from '../deps.js';
import { assertOwnTenant, originOf } from '../context.js';
import { decodeCursor, pageOf } from '../pagination.js';
import {
  Page,
  ResourceId,
  RevokedBlock,
  ScopeName,
  TenantId,
  TokenDescription,
  TokenInfo,
  TokenName,
  TokenLimitsSchema,
  Usage,
  listOf,
  strictQuery,
} from '../schemas.js';
import { callerOf } from '../plugins/auth.js';
import { getTenantWithUsage } from '../../control/tenants.js';
import { revokePlatformToken } from '../../control/admin-token.js';
import { issueToken, MAX_TOKEN_LIFETIME_SECONDS, revokeToken } from '../../control/tokens.js';
import { PpnError, invalidInput } from '../../errors.js';
import { readBlockUsage } from '../../store/token-blocks.js';
import { listPublicPlatformKeys } from '../../store/platform-keys.js';
import { findQuotaLineage, listTokenRows, type TokenRow } from '../../store/tokens.js';
import { encodeBase64url, parsePublicKeyText } from '../../tokens/keys.js';
import { parseVerifierKey } from '../../ledger/note.js';
import { scopesWithin, type Scope } from '../../tokens/scopes.js';

const IssueToken = Type.Object(
  {
    subject_pubkey: Type.String({ minLength: 1, maxLength: 100 }),
    scope: Type.Union([ScopeName, Type.Array(ScopeName, { minItems: 1, maxItems: 6, uniqueItems: true })]),
    expires_in_seconds: Type.Integer({ minimum: 1, maximum: MAX_TOKEN_LIFETIME_SECONDS }),
    proof_of_possession: Type.Optional(Type.Boolean()),
    limits: Type.Optional(TokenLimitsSchema),
    name: Type.Optional(TokenName),
    description: Type.Optional(TokenDescription),
  },
  { additionalProperties: false },
);

const IssuedToken = Type.Object({
  token: Type.String(),
  token_id: Type.String(),
  tenant_id: Type.String(),
  scope: Type.Array(Type.String()),
  subject_pubkey: Type.String(),
  expires_at: Type.String(),
  proof_of_possession: Type.Boolean(),
  limits: Type.Union([TokenLimitsSchema, Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]),
});

const WhoAmI = Type.Object({
  tenant_id: Type.Union([Type.String(), Type.Null()]),
  token_id: Type.String(),
  /** The final block's name: given when issuing, or by `ppn token delegate --name`; null when it has none. */
  name: Type.Union([Type.String(), Type.Null()]),
  subject: Type.String(),
  scope: Type.Array(Type.String()),
  expires_at: Type.String(),
  chain: Type.Array(
    Type.Object({
      token_id: Type.String(),
      name: Type.Union([Type.String(), Type.Null()]),
      subject: Type.String(),
      scope: Type.Array(Type.String()),
      expires_at: Type.String(),
      limits: Type.Union([TokenLimitsSchema, Type.Null()]),
      /** What the VMs created under this block hold now; null for platform tokens, which hold no tenant's VMs. */
      usage: Type.Union([Usage, Type.Null()]),
    }),
  ),
  /** The limited blocks of the token that issued this one through the API (and of its issuers). */
  issued_under: Type.Array(Type.Object({ token_id: Type.String(), limits: TokenLimitsSchema, usage: Type.Union([Usage, Type.Null()]) })),
});

const PlatformKeys = Type.Object({
  token_keys: Type.Array(
    Type.Object({
      kid: Type.String(),
      state: Type.Union([Type.Literal('active'), Type.Literal('verifying'), Type.Literal('retired')]),
      /** base64url of the raw 32-byte Ed25519 key, as `keys list --json` prints it. */
      public_key: Type.String(),
      created_at: Type.String(),
      retired_at: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
  /** What GET /v1/ledger/key serves, with its name and key hash apart; null on a server that signs no checkpoints. */
  ledger_key: Type.Union([Type.Object({ name: Type.String(), key_id: Type.String(), verifier_key: Type.String() }), Type.Null()]),
});

const TenantParams = Type.Object({ tenant_id: TenantId });

export function tokenInfo(row: TokenRow) {
  return {
    token_id: row.token_id,
    tenant_id: row.tenant_id,
    subject_pubkey: row.subject_pubkey,
    scope: JSON.parse(row.scopes) as string[],
    limits: row.limits ? (JSON.parse(row.limits) as Record<string, number>) : null,
    proof_of_possession: row.pop === 1,
    issued_at: row.issued_at,
    expires_at: row.expires_at,
    issued_by: row.issued_by,
    revoked_at: row.revoked_at,
    name: row.name,
    description: row.description,
  };
}

export function registerTokenRoutes(app: TypedApp, deps: RouteDeps): void {
  app.post(
    '/v1/tenants/:tenant_id/tokens',
    { config: { scope: 'service:tenant-admin' }, schema: { params: TenantParams, body: IssueToken, response: { 201: IssuedToken } } },
    async (request, reply) => {
      const tenantId = request.params.tenant_id;
      assertOwnTenant(request, tenantId);
      const caller = callerOf(request);
      const body = request.body;
      const raw = parsePublicKeyText(body.subject_pubkey);
      if (!raw) throw invalidInput('subject_pubkey', 'subject_pubkey is not a 32-byte Ed25519 public key (base64url, base64 or hex)');
      const scopes: Scope[] = Array.isArray(body.scope) ? body.scope : [body.scope];
      if (scopes.includes('service:platform-admin')) {
        throw invalidInput('scope', 'service:platform-admin cannot be granted inside a tenant');
      }
      const issuerSecondsLeft = caller.token.expiresAt - Math.floor(deps.clock.now() / 1000);
      if (!caller.isPlatformAdmin && body.expires_in_seconds > issuerSecondsLeft) {
        throw invalidInput('expires_in_seconds', `a tenant token may not issue a token that outlives it (${issuerSecondsLeft} s left)`);
      }
      if (!scopesWithin(scopes, caller.token.scopes)) {
        throw new PpnError('forbidden', `a token may only issue scopes it holds; it has ${caller.token.scopes.join(', ')}`);
      }
      // A token that must prove possession may not hand out one that need not: that would turn a
      // stolen-but-useless token's holder into one with a bearer token. Unsaid, the new token inherits it.
      const callerNeedsPop = !caller.isPlatformAdmin && caller.token.proofOfPossession;
      if (callerNeedsPop && body.proof_of_possession === false) {
        throw new PpnError('forbidden', 'a token that demands proof of possession may only issue tokens that demand it too');
      }
      // `{}` limits nothing, so it is stored and shown as no limits at all.
      const limits = body.limits && Object.keys(body.limits).length > 0 ? body.limits : null;
      const { token, row } = await issueToken(deps, deps.keyring, originOf(request), {
        tenantId,
        subjectPubkey: encodeBase64url(raw),
        scopes,
        expiresInSeconds: body.expires_in_seconds,
        limits,
        issuerChain: caller.isPlatformAdmin ? [] : caller.token.chain,
        proofOfPossession: body.proof_of_possession ?? callerNeedsPop,
        issuedBy: caller.token.tokenId,
        name: body.name ?? null,
        description: body.description ?? null,
      });
      return reply.code(201).send({
        token,
        token_id: row.token_id,
        tenant_id: tenantId,
        scope: scopes,
        subject_pubkey: row.subject_pubkey,
        expires_at: row.expires_at,
        proof_of_possession: row.pop === 1,
        limits,
        name: row.name,
        description: row.description,
      });
    },
  );

  app.get(
    '/v1/tenants/:tenant_id/tokens',
    {
      config: { scope: 'service:tenant-admin' },
      schema: { params: TenantParams, querystring: strictQuery(Page), response: { 200: listOf(TokenInfo) } },
    },
    async (request) => {
      assertOwnTenant(request, request.params.tenant_id);
      await getTenantWithUsage(deps.store.db, request.params.tenant_id);
      const limit = request.query.limit ?? 100;
      const rows = await listTokenRows(deps.store.db, request.params.tenant_id, decodeCursor(request.query.cursor), limit + 1);
      const page = pageOf(rows, limit, (t) => t.token_id);
      return { items: page.items.map(tokenInfo), next_cursor: page.next_cursor };
    },
  );

  app.delete(
    '/v1/tenants/:tenant_id/tokens/:token_id',
    {
      config: { scope: 'service:tenant-admin' },
      schema: { params: Type.Object({ tenant_id: TenantId, token_id: ResourceId }), response: { 200: Type.Union([TokenInfo, RevokedBlock]) } },
    },
    async (request) => {
      assertOwnTenant(request, request.params.tenant_id);
      const revoked = await revokeToken(deps, deps.revocations, originOf(request), request.params.tenant_id, request.params.token_id);
      if (revoked.kind === 'issued') return tokenInfo(revoked.row);
      return { token_id: revoked.tokenId, tenant_id: revoked.tenantId, issued: false as const, revoked_at: revoked.revokedAt };
    },
  );

  app.get(
    '/v1/admin/tokens',
    { config: { scope: 'service:platform-admin' }, schema: { querystring: strictQuery(Page), response: { 200: listOf(TokenInfo) } } },
    async (request) => {
      const limit = request.query.limit ?? 100;
      const rows = await listTokenRows(deps.store.db, null, decodeCursor(request.query.cursor), limit + 1);
      const page = pageOf(rows, limit, (t) => t.token_id);
      return { items: page.items.map(tokenInfo), next_cursor: page.next_cursor };
    },
  );

  app.delete(
    '/v1/admin/tokens/:token_id',
    { config: { scope: 'service:platform-admin' }, schema: { params: Type.Object({ token_id: ResourceId }), response: { 200: TokenInfo } } },
    async (request) => {
      const { token } = callerOf(request);
      return tokenInfo(await revokePlatformToken(deps, deps.revocations, originOf(request), request.params.token_id, token.tokenId));
    },
  );

  app.get('/v1/admin/keys', { config: { scope: 'service:platform-admin' }, schema: { response: { 200: PlatformKeys } } }, async () => {
    const verifierKey = deps.ledgerSigner?.verifierKey;
    const ledgerKey = verifierKey === undefined ? null : parseVerifierKey(verifierKey);
    return {
      token_keys: await listPublicPlatformKeys(deps.store.db),
      ledger_key: ledgerKey && { name: ledgerKey.name, key_id: ledgerKey.keyHash.toString('hex'), verifier_key: verifierKey! },
    };
  });

  app.get('/v1/whoami', { config: { scope: 'authenticated' }, schema: { response: { 200: WhoAmI } } }, async (request) => {
    const { token, names } = callerOf(request);
    const iso = (seconds: number) => new Date(seconds * 1000).toISOString();
    // Platform tokens hold no tenant's VMs, so their blocks have no usage.
    const lineage = token.tenantId === null ? [] : await findQuotaLineage(deps.store.db, token.chain[0]!.jti);
    const ids = [...lineage, ...token.chain].map((block) => block.jti);
    const usage = token.tenantId === null ? null : await readBlockUsage(deps.store.db, token.tenantId, ids);
    const usageOf = (jti: string) => usage?.get(jti) ?? null;
    return {
      tenant_id: token.tenantId,
      token_id: token.tokenId,
      name: names.at(-1) ?? null,
      subject: token.subject,
      scope: token.scopes,
      expires_at: iso(token.expiresAt),
      chain: token.chain.map((link, index) => ({
        token_id: link.jti,
        name: names[index] ?? null,
        subject: link.sub,
        scope: link.scp,
        expires_at: iso(link.exp),
        limits: link.lim ?? null,
        usage: usageOf(link.jti),
      })),
      issued_under: lineage.map((block) => ({ token_id: block.jti, limits: block.lim, usage: usageOf(block.jti) })),
    };
  });
}
