/** The API's records as the console reads them (docs/api.md), and the reads more than one page makes. */
import { callApi, readRateLimit } from './api.js';
import type { Session } from './session.js';

import type { TenantRecord as Tenant, Usage, VmRecord as Vm } from '../../src/records.js';

export type { Tenant, Usage, Vm };

export interface TenantAndVms {
  tenant: Tenant;
  /** The tenant's API rate as its last answer reported it. */
  rate: { used: number; limit: number } | undefined;
  vms: Vm[];
}

export async function readTenantAndVms(session: Session, tenantId: string): Promise<TenantAndVms> {
  const tenant = await callApi<Tenant>(session, 'GET', `/v1/tenants/${encodeURIComponent(tenantId)}`);
  const vms = await callApi<{ items: Vm[] }>(session, 'GET', '/v1/vms?limit=1000');
  return { tenant: tenant.body, rate: readRateLimit(vms.headers), vms: vms.body.items };
}

export function usageOf(tenant: Tenant): Usage {
  return tenant.usage ?? { vms: 0, storage_gb: 0, vcpus: 0, memory_mb: 0 };
}
