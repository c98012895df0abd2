/**
 * Serialised pages of a tenant's VM list, kept while the tenant's vm_generation is unchanged. The
 * generation is read with the tenant row on every authenticated request anyway, and every VM write
 * bumps it in its own transaction, so a hit is never stale, whichever process made the change.
 */
const MAX_TENANTS = 10_000;
const MAX_PAGES_PER_TENANT = 16;
/** Past this many cached characters in all, everything is dropped and the cache refills. */
const MAX_TOTAL_CHARS = 64 * 1024 * 1024;

interface TenantPages {
  generation: number;
  pages: Map<string, string>;
}

export class ListCache {
  private readonly tenants = new Map<string, TenantPages>();
  private totalChars = 0;

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
    if (this.totalChars + body.length > MAX_TOTAL_CHARS) {
      this.tenants.clear();
      this.totalChars = 0;
      entry = { generation, pages: new Map() };
      this.tenants.set(tenantId, entry);
    }
    entry.pages.set(pageKey, body);
    this.totalChars += body.length;
  }
}
