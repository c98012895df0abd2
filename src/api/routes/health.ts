/** Process and store health, the OpenAPI document and Prometheus metrics (SPEC §3). */
import type { RouteDeps, TypedApp } from '../deps.js';
import { ledgerRefusal } from '../../control/ledger-check.js';
import { PpnError } from '../../errors.js';
import { pingStore } from '../../store/store.js';

export function registerHealthRoutes(app: TypedApp, deps: RouteDeps): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { hide: true } }, async () => {
    if (deps.ledgerProblem) throw ledgerRefusal(deps.ledgerProblem);
    if (!(await pingStore(deps.store))) throw new PpnError('store_unavailable', 'the store does not answer');
    return { status: 'ready', background: deps.backgroundRole() };
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    // Labels carry route templates, methods and status codes only: never a tenant id.
    return reply.type(deps.metrics.contentType).send(await deps.metrics.metrics());
  });
}
