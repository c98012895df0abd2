/**
 * Prometheus metrics (SPEC §3). Two registries: the public one (process metrics, HTTP requests by
 * route template and status, background work) carries no tenant identifier, so /metrics may show it
 * to anyone; the tenant one (refusals per tenant) is added only for a platform admin's token.
 *
 * Tenant labels are bounded: a label is made only for a tenant that exists (the refusals counted
 * here happen after its row was read), at most `maxTenantLabels` of them, and every tenant past the
 * cap shares the label "other". A deleted tenant's series are dropped and its label freed.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';

export const DEFAULT_MAX_TENANT_LABELS = 1000;
export const OVERFLOW_TENANT_LABEL = 'other';

export class TenantMetrics {
  readonly registry = new Registry();
  private readonly labels = new Set<string>();
  private readonly quotaRefusals: Counter<'tenant'>;
  private readonly rateLimitRefusals: Counter<'tenant'>;
  private readonly usageDrift: Gauge<'tenant'>;
  private driftLabels = new Set<string>();

  constructor(private readonly maxTenantLabels: number) {
    const registers = [this.registry];
    this.quotaRefusals = new Counter({ name: 'ppn_quota_refusals_total', help: 'VM creations refused for quota, by tenant', labelNames: ['tenant'], registers });
    this.rateLimitRefusals = new Counter({
      name: 'ppn_rate_limit_refusals_total',
      help: 'Requests refused by the tenant rate limit, by tenant',
      labelNames: ['tenant'],
      registers,
    });
    this.usageDrift = new Gauge({
      name: 'ppn_usage_drift',
      help: "Usage rows (the tenant's, its token blocks') the last usage audit found differing from the VM rows, by tenant",
      labelNames: ['tenant'],
      registers,
    });
  }

  quotaRefused(tenantId: string): void {
    this.quotaRefusals.inc({ tenant: this.labelOf(tenantId) });
  }

  rateLimited(tenantId: string): void {
    this.rateLimitRefusals.inc({ tenant: this.labelOf(tenantId) });
  }

  /** What the last usage audit found: a series per drifting tenant; those no longer drifting go. */
  usageDrifted(rowsByTenant: ReadonlyMap<string, number>): void {
    const byLabel = new Map<string, number>();
    for (const [tenantId, rows] of rowsByTenant) {
      const label = this.labelOf(tenantId);
      byLabel.set(label, (byLabel.get(label) ?? 0) + rows);
    }
    for (const label of this.driftLabels) if (!byLabel.has(label)) this.usageDrift.remove({ tenant: label });
    for (const [label, rows] of byLabel) this.usageDrift.set({ tenant: label }, rows);
    this.driftLabels = new Set(byLabel.keys());
  }

  /** A deleted tenant: its series go, and its label slot is free for another tenant. */
  forget(tenantId: string): void {
    if (!this.labels.delete(tenantId)) return;
    this.quotaRefusals.remove({ tenant: tenantId });
    this.rateLimitRefusals.remove({ tenant: tenantId });
    this.usageDrift.remove({ tenant: tenantId });
    this.driftLabels.delete(tenantId);
  }

  private labelOf(tenantId: string): string {
    if (this.labels.has(tenantId)) return tenantId;
    if (this.labels.size >= this.maxTenantLabels) return OVERFLOW_TENANT_LABEL;
    this.labels.add(tenantId);
    return tenantId;
  }
}

/** Usage rows the last audit found differing, all tenants together: public, so alerting needs no admin token. */
export function usageDriftGauge(registry: Registry): Gauge {
  const existing = registry.getSingleMetric('ppn_usage_drift_rows');
  if (existing) return existing as Gauge;
  return new Gauge({ name: 'ppn_usage_drift_rows', help: 'Usage rows the last usage audit found differing from the VM rows', registers: [registry] });
}

/** The public registry, with the process's default metrics (CPU, memory, event loop, GC). */
export function publicRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

export function registerHttpMetrics(app: FastifyInstance, registry: Registry): void {
  const requests = new Counter({
    name: 'ppn_http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'ppn_http_request_duration_seconds',
    help: 'HTTP request duration by route template',
    labelNames: ['route'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    duration.observe({ route }, reply.elapsedTime / 1000);
  });
}

/** The /metrics text: tenant series only when the caller is a platform admin (SPEC §3). */
export async function renderMetrics(registry: Registry, tenants: TenantMetrics, withTenants: boolean): Promise<string> {
  const text = await registry.metrics();
  return withTenants ? `${text}\n${await tenants.registry.metrics()}` : text;
}
