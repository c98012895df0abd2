/**
 * Serialised pages of a tenant's VM list, kept while the tenant's vm_generation is unchanged. The
 * generation is read with the tenant row on every authenticated request anyway, and every VM write
 * bumps it in its own transaction, so a hit is never stale, whichever process made the change.
 */
const MAX_TENANTS = 10_000;
const MAX_PAGES_PER_TENANT = 64;

interface TenantPages {
  generation: number;
  pages: Map<string, string>;
}

export class ListCache {
  private readonly tenants = new Map<string, TenantPages>();

  get(tenantId: string, generation: number, pageKey: string): string | undefined {
    const entry = this.tenants.get(tenantId);
    return entry && entry.generation === generation ? entry.pages.get(pageKey) : undefined;
  }

  set(tenantId: string, generation: number, pageKey: string, body: string): void {
    let entry = this.tenants.get(tenantId);
    if (!entry || entry.generation !== generation) {
      if (!entry && this.tenants.size >= MAX_TENANTS) this.tenants.delete(this.tenants.keys().next().value!);
      entry = { generation, pages: new Map() };
      this.tenants.set(tenantId, entry);
    }
    if (entry.pages.size >= MAX_PAGES_PER_TENANT) entry.pages.clear();
    entry.pages.set(pageKey, body);
  }
}
