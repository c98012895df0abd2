/**
 * Request and response schemas shared by the routes. One TypeBox schema both validates input and
 * feeds /openapi.json. Bounds here are the product's input limits (docs/api.md lists them).
 */
import { Type } from 'typebox';
import { MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, PRINTABLE_PATTERN } from '../tokens/format.js';
import { SCOPES } from '../tokens/scopes.js';

export const TENANT_ID_SOURCE = '^(?!.*--)[a-z][a-z0-9-]{0,61}[a-z0-9]$';

// Each pattern's description says the rule in words: it is the detail of a 400 for a value that
// breaks it (src/api/validation.ts), and the field's description in /openapi.json.
export const TenantId = Type.String({
  pattern: TENANT_ID_SOURCE,
  minLength: 2,
  maxLength: 63,
  description: 'a tenant id: 2 to 63 lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit',
});
/** A DNS label (RFC 1123). */
export const DnsLabel = Type.String({
  pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
  maxLength: 63,
  description: 'a DNS label: 1 to 63 lowercase letters, digits and hyphens, starting and ending with a letter or digit',
});
export const ResourceId = Type.String({
  pattern: '^[a-z]+-[0-9a-z]{26}$',
  maxLength: 64,
  description: 'an id the server made: a lowercase prefix, a hyphen and 26 lowercase letters and digits, such as vm-01m8ft8btc7tvq8ag3w1aceh4q',
});

export const Limit = {
  max_vms: Type.Integer({ minimum: 0, maximum: 100_000 }),
  storage_quota_gb: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  api_rate_limit_rpm: Type.Integer({ minimum: 1, maximum: 100_000 }),
  max_vcpus: Type.Union([Type.Integer({ minimum: 0, maximum: 1_000_000 }), Type.Null()]),
  max_memory_mb: Type.Union([Type.Integer({ minimum: 0, maximum: 1_000_000_000 }), Type.Null()]),
};

export const Usage = Type.Object({
  vms: Type.Integer(),
  storage_gb: Type.Integer(),
  vcpus: Type.Integer(),
  memory_mb: Type.Integer(),
});

export const Tenant = Type.Object({
  tenant_id: Type.String(),
  display_name: Type.String(),
  max_vms: Type.Integer(),
  storage_quota_gb: Type.Integer(),
  api_rate_limit_rpm: Type.Integer(),
  max_vcpus: Type.Union([Type.Integer(), Type.Null()]),
  max_memory_mb: Type.Union([Type.Integer(), Type.Null()]),
  state: Type.String(),
  require_pop: Type.Boolean(),
  shared_pool: Type.Boolean(),
  created_at: Type.String(),
  updated_at: Type.String(),
  usage: Type.Optional(Usage),
});

export const Vm = Type.Object({
  vm_id: Type.String(),
  tenant_id: Type.String(),
  name: Type.String(),
  vcpus: Type.Integer(),
  memory_mb: Type.Integer(),
  disk_gb: Type.Integer(),
  image: Type.Union([Type.String(), Type.Null()]),
  state: Type.String(),
  desired_state: Type.String(),
  node_id: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
  created_by: Type.Union([Type.String(), Type.Null()]),
});

export const ScopeName = Type.Union(SCOPES.map((s) => Type.Literal(s)));

export const TokenLimitsSchema = Type.Object(
  {
    max_vms: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    storage_quota_gb: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    max_vcpus: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
    max_memory_mb: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000 })),
  },
  { additionalProperties: false },
);

export const TokenInfo = Type.Object({
  token_id: Type.String(),
  tenant_id: Type.Union([Type.String(), Type.Null()]),
  subject_pubkey: Type.String(),
  scope: Type.Array(Type.String()),
  limits: Type.Union([TokenLimitsSchema, Type.Null()]),
  proof_of_possession: Type.Boolean(),
  issued_at: Type.String(),
  expires_at: Type.String(),
  issued_by: Type.Union([Type.String(), Type.Null()]),
  revoked_at: Type.Union([Type.String(), Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  description: Type.Union([Type.String(), Type.Null()]),
});

/** The same printable text a delegated block's name claim must be (src/tokens/format.ts). */
const PRINTABLE_TEXT = 'printable text (no control characters, line separators or bidirectional overrides)';
export const TokenName = Type.String({
  minLength: 1,
  maxLength: MAX_NAME_CHARS,
  pattern: PRINTABLE_PATTERN,
  description: `${PRINTABLE_TEXT} of 1 to ${MAX_NAME_CHARS} characters`,
});
export const TokenDescription = Type.String({
  maxLength: MAX_DESCRIPTION_CHARS,
  pattern: PRINTABLE_PATTERN,
  description: `${PRINTABLE_TEXT} of at most ${MAX_DESCRIPTION_CHARS} characters`,
});

/** A revoked block the server issued no token for: one delegated offline, or an id not yet seen. */
export const RevokedBlock = Type.Object({
  token_id: Type.String(),
  tenant_id: Type.String(),
  issued: Type.Literal(false),
  revoked_at: Type.String(),
});

export const Page = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
};

/** A query string that takes exactly these parameters: any other is a 400 naming it. */
export const strictQuery = <T extends Parameters<typeof Type.Object>[0]>(properties: T) => Type.Object(properties, { additionalProperties: false });

/** The query string of a route that takes no parameters. */
export const NoQuery = strictQuery({});

export const listOf = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Type.Object({ items: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });
