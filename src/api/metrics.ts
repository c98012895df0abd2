/**
 * Prometheus metrics (SPEC §3). Two registries: the public one (process metrics, HTTP requests by
 * route template and status, background work, the replica's ledger and leadership) carries no tenant
 * identifier, so /metrics may show it to anyone; the tenant one (refusals, usage against limits and
 * usage drift per tenant) is added only for a platform admin's token, or for the scrape token when
 * the server has one (`serve --metrics-token`), which then guards the whole route.
 *
 * Tenant labels are bounded: a label is made only for a tenant that exists (the refusals counted
 * here happen after its row was read), at most `maxTenantLabels` of them, and every tenant past the
 * cap shares the label "other". A deleted tenant's series are dropped and its label freed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import { PpnError } from '../errors.js';
import type { Store } from '../store/store.js';
import { readTenantQuotas } from '../store/tenants.js';
import type { RateLimiter } from './rate-limiter.js';
import { routeConfigOf } from './route-config.js';

export const DEFAULT_MAX_TENANT_LABELS = 1000;
export const OVERFLOW_TENANT_LABEL = 'other';

/** What `ppn_tenant_usage` and `ppn_tenant_limit` measure, by their `resource` label. */
export const QUOTA_RESOURCES = ['vms', 'storage_gb', 'vcpus', 'memory_mb', 'api_rate_rpm'] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];

/** One tenant's usage beside its limits (null: no limit, as max_vcpus and max_memory_mb may be). */
export interface TenantQuotaReading {
  tenantId: string;
  usage: Record<QuotaResource, number>;
  limits: Record<QuotaResource, number | null>;
}

export class TenantMetrics {
  readonly registry = new Registry();
  private readonly labels = new Set<string>();
  private readonly quotaRefusals: Counter<'tenant'>;
  private readonly rateLimitRefusals: Counter<'tenant'>;
  private readonly usageDrift: Gauge<'tenant'>;
  private driftLabels = new Set<string>();
  private readonly usage: Gauge<'tenant' | 'resource'>;
  private readonly limit: Gauge<'tenant' | 'resource'>;

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
    this.usage = new Gauge({
      name: 'ppn_tenant_usage',
      help: 'What the tenant holds now (vms, storage_gb, vcpus, memory_mb) and its requests in the current rate window (api_rate_rpm), by tenant and resource',
      labelNames: ['tenant', 'resource'],
      registers,
    });
    this.limit = new Gauge({
      name: 'ppn_tenant_limit',
      help: "The tenant's limit for each resource of ppn_tenant_usage (absent: no limit), by tenant and resource",
      labelNames: ['tenant', 'resource'],
      registers,
    });
  }

  /**
   * Replaces the usage and limit series with `readings`, read at scrape time. Tenants past the label
   * cap add up under "other", whose limit for a resource is absent when any of them has none.
   */
  observeQuotas(readings: readonly TenantQuotaReading[]): void {
    const byLabel = new Map<string, TenantQuotaReading>();
    for (const reading of readings) {
      const label = this.labelOf(reading.tenantId);
      const seen = byLabel.get(label);
      if (!seen) {
        byLabel.set(label, { tenantId: label, usage: { ...reading.usage }, limits: { ...reading.limits } });
        continue;
      }
      for (const resource of QUOTA_RESOURCES) {
        seen.usage[resource] += reading.usage[resource];
        const limit = reading.limits[resource];
        seen.limits[resource] = seen.limits[resource] === null || limit === null ? null : seen.limits[resource] + limit;
      }
    }
    this.usage.reset();
    this.limit.reset();
    for (const [tenant, { usage, limits }] of byLabel) {
      for (const resource of QUOTA_RESOURCES) {
        this.usage.set({ tenant, resource }, usage[resource]);
        const limit = limits[resource];
        if (limit !== null) this.limit.set({ tenant, resource }, limit);
      }
    }
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

/** Counts one answered request in ppn_http_requests_total and ppn_http_request_duration_seconds. */
export type RecordHttp = (method: string, route: string, status: number, seconds: number) => void;

/**
 * The HTTP request metrics, registered in `registry` (once per registry): the API port's hook and
 * the agent listener's worker (whose samples reach the main thread in batches) count through the
 * one recorder this returns, into the same series.
 */
export function httpMetrics(registry: Registry): RecordHttp {
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
  return (method, route, status, seconds) => {
    requests.inc({ method, route, status: String(status) });
    duration.observe({ route }, seconds);
  };
}

/** Counts every request `app` answers through `record`. */
export function registerHttpMetrics(app: FastifyInstance, record: RecordHttp): void {
  app.addHook('onResponse', (request, reply, done) => {
    record(request.method, routeConfigOf(request).url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
}

/**
 * Every live tenant's usage and limits: the kept usage columns of the tenant rows (one statement,
 * constant work per tenant) and the rate limiter's window at `now`.
 */
export async function readTenantQuotaReadings(store: Store, limiter: RateLimiter, now: number): Promise<TenantQuotaReading[]> {
  const [rows, requests] = await Promise.all([readTenantQuotas(store.db), limiter.usage(now)]);
  const nullable = (value: number | null) => (value === null ? null : Number(value));
  return rows.map((row) => ({
    tenantId: row.tenant_id,
    usage: {
      vms: Number(row.usage_vms),
      storage_gb: Number(row.usage_storage_gb),
      vcpus: Number(row.usage_vcpus),
      memory_mb: Number(row.usage_memory_mb),
      api_rate_rpm: requests.get(row.tenant_id) ?? 0,
    },
    limits: {
      vms: Number(row.max_vms),
      storage_gb: Number(row.storage_quota_gb),
      vcpus: nullable(row.max_vcpus),
      memory_mb: nullable(row.max_memory_mb),
      api_rate_rpm: Number(row.api_rate_limit_rpm),
    },
  }));
}

/** The /metrics text: tenant series only when the caller is a platform admin or the scrape token's holder (SPEC §3). */
export async function renderMetrics(registry: Registry, tenants: TenantMetrics, withTenants: boolean): Promise<string> {
  const text = await registry.metrics();
  return withTenants ? `${text}\n${await tenants.registry.metrics()}` : text;
}

/**
 * The check of `serve --metrics-token`: the request must carry `Authorization: Bearer <token>`.
 * Both sides are hashed first, so the comparison takes the same time whatever the lengths, and
 * timingSafeEqual keeps it from telling how much of a guess was right.
 */
export function metricsTokenGuard(token: string): (authorization: string | undefined) => void {
  const expected = createHash('sha256').update(token).digest();
  return (authorization) => {
    const match = authorization ? /^Bearer +([^\s]+)$/i.exec(authorization) : null;
    if (!match) throw new PpnError('unauthenticated', 'this server guards /metrics: send "Authorization: Bearer <the metrics token>"');
    if (!timingSafeEqual(createHash('sha256').update(match[1]!).digest(), expected)) {
      throw new PpnError('unauthenticated', 'not the metrics token this server was started with');
    }
  };
}
