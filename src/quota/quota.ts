/**
 * Quota decisions (SPEC §6), pure: given limits, the usage derived in the same transaction and what a
 * request asks for, which policies would be violated. The caller holds the tenant's lock while it
 * decides and inserts, so the answer cannot go stale before the insert.
 */
/** What a tenant (or a token block) holds now, summed from its VM records. */
export interface Usage {
  vms: number;
  storage_gb: number;
  vcpus: number;
  memory_mb: number;
}

export const QUOTA_POLICIES = ['max_vms', 'storage_quota_gb', 'max_vcpus', 'max_memory_mb'] as const;
export type QuotaPolicy = (typeof QUOTA_POLICIES)[number];

/** A null or absent limit means unlimited. */
export type QuotaLimits = Partial<Record<QuotaPolicy, number | null>>;

export interface VmRequest {
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
}

export interface QuotaViolation {
  policy: QuotaPolicy;
  resource: keyof Usage;
  limit: number;
  used: number;
  requested: number;
}

const RESOURCE_OF: Record<QuotaPolicy, keyof Usage> = {
  max_vms: 'vms',
  storage_quota_gb: 'storage_gb',
  max_vcpus: 'vcpus',
  max_memory_mb: 'memory_mb',
};

export function findQuotaViolations(limits: QuotaLimits, usage: Usage, request: VmRequest): QuotaViolation[] {
  const requested: Usage = { vms: 1, storage_gb: request.disk_gb, vcpus: request.vcpus, memory_mb: request.memory_mb };
  const violations: QuotaViolation[] = [];
  for (const policy of QUOTA_POLICIES) {
    const limit = limits[policy];
    if (limit === null || limit === undefined) continue;
    const resource = RESOURCE_OF[policy];
    if (usage[resource] + requested[resource] > limit) {
      violations.push({ policy, resource, limit, used: usage[resource], requested: requested[resource] });
    }
  }
  return violations;
}

/** Limits that current usage already exceeds: a PATCH lowering them needs `force`. */
export function limitsBelowUsage(limits: QuotaLimits, usage: Usage): QuotaPolicy[] {
  return QUOTA_POLICIES.filter((policy) => {
    const limit = limits[policy];
    return limit !== null && limit !== undefined && usage[RESOURCE_OF[policy]] > limit;
  });
}
