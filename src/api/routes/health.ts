/** Process and store health, the OpenAPI document and Prometheus metrics (SPEC §3). */
import type { RouteDeps, TypedApp } from '../deps.js';
import { ledgerRefusal } from '../../control/ledger-check.js';
import { PpnError } from '../../errors.js';
import { pingStore } from '../../store/store.js';
import { renderMetrics } from '../metrics.js';

export function registerHealthRoutes(app: TypedApp, deps: RouteDeps): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { hide: true } }, async () => {
    if (deps.ledgerProblem) throw ledgerRefusal(deps.ledgerProblem);
    const verifying = deps.ledgerVerifying;
    if (verifying) {
      throw new PpnError('ledger_verifying', `the start-up check of the ledger is running: ${verifying.checked} of ${verifying.total} entries checked`, {
        extensions: { checked: verifying.checked, total: verifying.total },
      });
    }
    if (!(await pingStore(deps.store))) throw new PpnError('store_unavailable', 'the store does not answer');
    return { status: 'ready', background: deps.backgroundRole() };
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // Public, but a platform admin's token adds the per-tenant series: only it may see tenant ids.
  app.get('/metrics', { config: { scope: 'optional' }, schema: { hide: true } }, async (request, reply) => {
    const text = await renderMetrics(deps.metrics, deps.tenantMetrics, request.caller?.isPlatformAdmin === true);
    return reply.type(deps.metrics.contentType).send(text);
  });
}
