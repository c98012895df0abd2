/**
 * What buildApp hands to the route modules and the background work. It lives apart from app.ts so
 * that nothing app.ts registers has to import app.ts back (the architecture test refuses cycles).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import type { Registry } from 'prom-client';
import type { Clock, IdSource } from '../clock.js';
import type { LedgerSigner } from '../control/checkpoints.js';
import type { LedgerProblem } from '../control/ledger-check.js';
import type { RevocationList } from '../control/revocations.js';
import type { HeartbeatRecorder } from '../control/heartbeats.js';
import type { SessionRecorder } from '../control/sessions.js';
import type { AcceptNonce } from '../httpsig/verify.js';
import type { Store } from '../store/store.js';
import type { TreeHead } from '../ledger/checkpoint.js';
import type { PlatformKeyring } from '../tokens/keyring.js';
import type { TenantMetrics } from './metrics.js';
import type { RateLimiter } from './rate-limiter.js';

/** This server's part in the background work: elected to run it, waiting, or not taking part. */
export type BackgroundRole = 'leader' | 'standby' | 'off';

/** What route modules receive. */
export interface RouteDeps {
  store: Store;
  keyring: PlatformKeyring;
  clock: Clock;
  ids: IdSource;
  revocations: RevocationList;
  /** Tokens in use, aggregated in memory until the next flush (src/control/sessions.ts). */
  sessions: SessionRecorder;
  /** Quiet heartbeats' liveness times, kept in memory until the next flush (src/control/heartbeats.ts). */
  heartbeats: HeartbeatRecorder;
  limiter: RateLimiter;
  /** Records each accepted request-signature nonce; false when it was accepted before (nonce-record.ts). */
  acceptNonce: AcceptNonce;
  /** Metrics anyone may read: no tenant identifiers. */
  metrics: Registry;
  /** Per-tenant refusal counters, shown on /metrics to platform admins only. */
  tenantMetrics: TenantMetrics;
  /** Whether this server runs the background work now. */
  backgroundRole: () => BackgroundRole;
  ledgerSigner: (LedgerSigner & { verifierKey: string }) | undefined;
  /** What the start-up check or the signer found wrong with the ledger; while set, /readyz and every /v1 route refuse. */
  ledgerProblem: LedgerProblem | null;
  /** While the start-up check runs: entries it has checked of those it has to (/readyz says ledger_verifying). */
  ledgerVerifying: { checked: number; total: number } | null;
  /** The latest tree head this server checked: the signer checks only what was added since. */
  verifiedHead: TreeHead;
  ledgerStateDir: string | undefined;
  /** vCPUs the scheduler may place per node CPU. */
  cpuOvercommit: number;
  /** The interval nodes are asked to heartbeat at; 3 silent intervals make a node unreachable. */
  heartbeatIntervalS: number;
}

export type TypedApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;
