/**
 * The closed set of scopes (SPEC §5) and what each implies. platform-admin implies everything;
 * tenant-admin implies every tenant scope and node:agent (so it may issue agent tokens); input ⊃
 * user ⊃ read. node:agent implies nothing else: a stolen agent token can only act as that node.
 */
export const SCOPES = ['service:platform-admin', 'service:tenant-admin', 'tenant:input', 'tenant:user', 'tenant:read', 'node:agent'] as const;

export type Scope = (typeof SCOPES)[number];

const IMPLIES: Record<Scope, readonly Scope[]> = {
  'service:platform-admin': SCOPES,
  'service:tenant-admin': ['service:tenant-admin', 'tenant:input', 'tenant:user', 'tenant:read', 'node:agent'],
  'tenant:input': ['tenant:input', 'tenant:user', 'tenant:read'],
  'tenant:user': ['tenant:user', 'tenant:read'],
  'tenant:read': ['tenant:read'],
  'node:agent': ['node:agent'],
};

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (SCOPES as readonly string[]).includes(value);
}

/** True when a holder of `held` may do what `wanted` allows. */
export function scopesAllow(held: readonly Scope[], wanted: Scope): boolean {
  return held.some((scope) => IMPLIES[scope].includes(wanted));
}

/** True when every scope of `narrower` is allowed by `wider`: a delegation may never widen. */
export function scopesWithin(narrower: readonly Scope[], wider: readonly Scope[]): boolean {
  return narrower.every((scope) => scopesAllow(wider, scope));
}
