/**
 * buildApp wires the API together and never listens (src/cli/serve.ts does). Registration order is
 * the order requests meet things: request id → problem mapping → auth/rate limit → routes.
 */
import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import Fastify from 'fastify';
import { Counter, Histogram, Registry } from 'prom-client';
import { makeIdSource, systemClock, type Clock, type IdSource } from '../clock.js';
import { REFRESH_MS, RevocationList } from '../control/revocations.js';
import type { Store } from '../store/store.js';
import type { PlatformKeyring } from '../tokens/keyring.js';
import { LiveKeyring } from '../control/platform-keys.js';
import { startBackground } from './background.js';
import type { RouteDeps, TypedApp } from './deps.js';
import { registerAuth } from './plugins/auth.js';
import { rateLimiterFor } from './rate-limiter.js';
import { registerProblemHandling } from './problem.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerTenantRoutes } from './routes/tenants.js';
import { registerTokenRoutes } from './routes/tokens.js';
import { registerVmRoutes } from './routes/vms.js';
import { registerLedgerRoutes } from './routes/ledger.js';
import type { LedgerSigner } from '../control/checkpoints.js';
import { checkLedger, ledgerRefusal } from '../control/ledger-check.js';
import { parseVerifierKey } from '../ledger/note.js';

export const BODY_LIMIT_BYTES = 64 * 1024;
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export interface AppOptions {
  store: Store;
  /** A LiveKeyring follows key rotations made elsewhere, as the revocation list follows revocations. */
  keyring: PlatformKeyring | LiveKeyring;
  clock?: Clock;
  ids?: IdSource;
  /** pino options, or false for no logging (tests). */
  logger?: boolean | Record<string, unknown>;
  /** Take part in the leader election and run background work when elected (the server does). */
  runBackgroundWork?: boolean;
  /** How often to re-read revocations made elsewhere (default REFRESH_MS). */
  revocationPollMs?: number;
  /** The ledger's checkpoint signer; without it no checkpoints are signed. */
  ledgerSigner?: LedgerSigner & { verifierKey: string };
}

// Bodies are validated strictly: no type coercion and no silent removal of unknown fields, so a
// wrong type or a misspelt field is a 400 naming it. Query strings and path parameters are text,
// so they are coerced ("10" → 10) by a second validator.
const bodyAjv = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false, strict: false });
const textAjv = new Ajv({ coerceTypes: true, removeAdditional: false, useDefaults: true, allErrors: false, strict: false });

export async function buildApp(options: AppOptions): Promise<TypedApp> {
  const clock = options.clock ?? systemClock;
  const deps: RouteDeps = {
    store: options.store,
    keyring: options.keyring,
    clock,
    ids: options.ids ?? makeIdSource(clock),
    revocations: new RevocationList(),
    limiter: rateLimiterFor(options.store),
    metrics: new Registry(),
    backgroundRole: () => 'off',
    ledgerSigner: options.ledgerSigner,
    ledgerProblem: null,
  };
  await deps.revocations.refresh(deps.store.db);

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming) ? incoming : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Fastify parses text/plain by default; the API takes JSON only, so any other body is a 415 (SPEC §3).
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'PPN control plane', version: '0.1.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  registerMetrics(app, deps.metrics);
  app.addHook('onSend', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
  });
  registerProblemHandling(app);
  await checkLedgerAtStart(app, deps);
  registerAuth(app, deps);

  // Revocations made by other replicas reach this one when they announce them (PostgreSQL NOTIFY),
  // and within REFRESH_MS whatever happens to the notification.
  const refresh = () => {
    deps.revocations.refresh(deps.store.db).catch((error: unknown) => app.log.warn({ err: error }, 'revocation refresh failed'));
  };
  const refresher = setInterval(refresh, options.revocationPollMs ?? REFRESH_MS);
  refresher.unref();
  const stopListening = deps.store.listen('ppn_revocations', refresh);
  app.addHook('onClose', async () => {
    clearInterval(refresher);
    await stopListening();
  });
  followKeyChanges(app, deps.store, options.keyring, options.revocationPollMs ?? REFRESH_MS);

  // A ledger that failed its check gets no new checkpoints: signing one would vouch for it.
  if (options.runBackgroundWork && !deps.ledgerProblem) {
    const background = startBackground(deps, app.log, deps.metrics);
    deps.backgroundRole = background.role;
    app.addHook('onClose', background.stop);
  }

  registerHealthRoutes(app, deps);
  registerTenantRoutes(app, deps);
  registerTokenRoutes(app, deps);
  registerVmRoutes(app, deps);
  registerLedgerRoutes(app, deps);
  return app;
}

/** Key rotations and retirements made elsewhere reach this server the same way as revocations. */
function followKeyChanges(app: TypedApp, store: Store, keyring: PlatformKeyring | LiveKeyring, pollMs: number): void {
  if (!(keyring instanceof LiveKeyring)) return;
  const refresh = () => {
    keyring.refresh().catch((error: unknown) => app.log.warn({ err: error }, 'platform key refresh failed'));
  };
  const refresher = setInterval(refresh, pollMs);
  refresher.unref();
  const stopListening = store.listen('ppn_keys', refresh);
  app.addHook('onClose', async () => {
    clearInterval(refresher);
    await stopListening();
  });
}

/**
 * The start-up check (SPEC §8): the stored tree against the entries and every signed checkpoint
 * (src/control/ledger-check.ts). On disagreement the server stays up to say so, refusing /v1.
 */
async function checkLedgerAtStart(app: TypedApp, deps: RouteDeps): Promise<void> {
  const started = Date.now();
  const key = deps.ledgerSigner ? parseVerifierKey(deps.ledgerSigner.verifierKey) : undefined;
  let reported = 0;
  const result = await checkLedger(deps.store, key, (checked) => {
    if (checked - reported >= 100_000) {
      reported = checked;
      app.log.info({ checked }, 'checking the ledger');
    }
  });
  const ms = Date.now() - started;
  if (!result.problem) {
    app.log.info({ entries: result.size, checkpoints: result.checkpoints, ms }, 'ledger verified');
    return;
  }
  deps.ledgerProblem = result.problem;
  const refusal = ledgerRefusal(result.problem);
  app.log.error({ bad_index: result.problem.index, ms }, refusal.message);
  app.addHook('onRequest', async (request) => {
    if (request.url.startsWith('/v1/')) throw refusal;
  });
}

function registerMetrics(app: TypedApp, registry: Registry): void {
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
