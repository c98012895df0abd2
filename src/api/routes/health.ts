/** Process and store health, the OpenAPI document and Prometheus metrics (SPEC §3). */
import type { RouteDeps, TypedApp } from '../deps.js';
import { ledgerRefusal } from '../../control/ledger-check.js';
import { PpnError } from '../../errors.js';
import { pingStore } from '../../store/store.js';
import { metricsTokenGuard, readTenantQuotaReadings, renderMetrics } from '../metrics.js';
import { registerReplicaMetrics } from '../replica-metrics.js';
import { VERSION } from '../../version.js';

export interface HealthOptions {
  /** `serve --metrics-token`: /metrics then answers only this bearer token, and with the tenant series. */
  metricsToken?: string;
}

export function registerHealthRoutes(app: TypedApp, deps: RouteDeps, options: HealthOptions = {}): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  // Every answer, ready or not, says which release this is: a rolling upgrade is watched here.
  app.get('/readyz', { schema: { hide: true } }, async () => {
    const refusal = readinessRefusal(deps) ?? ((await pingStore(deps.store)) ? null : new PpnError('store_unavailable', 'the store does not answer'));
    if (refusal) throw new PpnError(refusal.code, refusal.message, { extensions: { ...refusal.extensions, version: VERSION }, headers: refusal.headers });
    return { status: 'ready', version: VERSION, background: deps.backgroundRole() };
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // Public, but a platform admin's token adds the per-tenant series: only it may see tenant ids.
  // With a metrics token, only its holder (a Prometheus scraper, which can neither sign requests nor
  // renew capability tokens) may read it, and sees the tenant series: the auth plugin leaves the
  // bearer to the route, as it is not a capability token.
  const guard = options.metricsToken === undefined ? null : metricsTokenGuard(options.metricsToken);
  const observeReplica = registerReplicaMetrics(deps.metrics, deps, app.log);
  app.get('/metrics', { config: { scope: 'optional', ownBearer: guard !== null }, schema: { hide: true } }, async (request, reply) => {
    guard?.(request.headers.authorization);
    const withTenants = guard !== null || request.caller?.isPlatformAdmin === true;
    await observeReplica();
    if (withTenants) {
      try {
        deps.tenantMetrics.observeQuotas(await readTenantQuotaReadings(deps.store, deps.limiter, deps.clock.now()));
      } catch (error) {
        deps.tenantMetrics.observeQuotas([]);
        request.log.warn({ err: error }, "metrics: could not read the tenants' usage from the store");
      }
    }
    const text = await renderMetrics(deps.metrics, deps.tenantMetrics, withTenants);
    return reply.type(deps.metrics.contentType).send(text);
  });
}

/** Why the server is not ready as far as the ledger says, or null. */
function readinessRefusal(deps: RouteDeps): PpnError | null {
  if (deps.ledgerProblem) return ledgerRefusal(deps.ledgerProblem);
  const verifying = deps.ledgerVerifying;
  if (!verifying) return null;
  return new PpnError('ledger_verifying', `the start-up check of the ledger is running: ${verifying.checked} of ${verifying.total} entries checked`, {
    extensions: { checked: verifying.checked, total: verifying.total },
  });
}
