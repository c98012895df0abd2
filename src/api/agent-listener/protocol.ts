/**
 * The messages between the agent listener's worker thread and the main thread (docs/design/fleet.md,
 * "The agent listener"). All plain data: they cross `postMessage` by structured clone.
 */
import type { Examination } from '../../httpsig/verify.js';
import type { ErrorCode } from '../../errors.js';
import type { ServerTlsFiles } from '../../tls/server.js';

/** The node's own routes, by what they do. */
export type AgentOp = 'enroll' | 'heartbeat' | 'console';

/**
 * How far the main thread goes with a call. The API refuses in this order: token and tenant before
 * the body is read; the body's size, type and JSON; the signature, rate limit and scope; validation.
 * So a call whose body could not be read asks only for the first step (`authenticate`), a call whose
 * body failed validation for every step but the answer (`admit`), and a valid call for all (`answer`).
 */
export type AgentStage = 'authenticate' | 'admit' | 'answer';

export interface AgentCall {
  op: AgentOp;
  stage: AgentStage;
  method: string;
  params: Record<string, string>;
  /** The parsed body; undefined when it could not be read. */
  body: unknown;
  authorization: string | undefined;
  /** The request signature as examined in the worker (src/httpsig/verify.ts); null when the body could not be read. */
  examination: Examination | null;
  requestId: string;
  /** The client's address (X-Forwarded-For's from a trusted proxy). */
  ip: string;
}

export interface AgentProblem {
  code: ErrorCode;
  detail: string;
  headers: Record<string, string>;
  extensions: Record<string, unknown>;
}

/** The main thread's answer: a status and JSON text, or a problem; headers either way (the rate limit's). */
export interface AgentAnswer {
  status: number;
  headers: Record<string, string>;
  /** JSON text; null for no body (204, and a stage short of `answer` that passed). */
  body: string | null;
  problem: AgentProblem | null;
  /** Who the verified token says the caller is, for the request's log line. */
  principal: { tenantId: string | null; tokenId: string } | null;
}

/** What the worker is started with. */
export interface WorkerSettings {
  host: string;
  port: number;
  tls: ServerTlsFiles | undefined;
  logLevel: string;
  requestTimeoutMs: number | undefined;
  maxConnectionsPerAddress: number | undefined;
  trustProxy: string[] | undefined;
}

/** One answered request on the agent port, as the API port's metrics hook counts it. */
export type HttpSample = [method: string, route: string, status: number, seconds: number];

export type ToWorker =
  | { kind: 'answer'; id: number; answer: AgentAnswer }
  | { kind: 'reload-tls' }
  /** Send the log lines and metrics samples held now; `flushed` follows them. */
  | { kind: 'flush' }
  | { kind: 'close' };

export type FromWorker =
  | { kind: 'listening'; port: number; address: string }
  | { kind: 'failed'; message: string }
  | { kind: 'call'; id: number; call: AgentCall }
  /** Request log lines (pino JSON lines, possibly none) and answered requests for the HTTP metrics. */
  | { kind: 'batch'; text: string; samples: HttpSample[] }
  | { kind: 'flushed' }
  | { kind: 'closed' };
