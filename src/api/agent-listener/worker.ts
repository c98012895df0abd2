/**
 * The agent listener's worker thread: a second port serving only the node's own routes (SPEC §7:
 * enroll, heartbeat, console upload) and GET /v1/version, so that the CPU a heartbeat costs before
 * any decision (HTTP parsing, the JSON body, validation, the Ed25519 signature check, Fastify's hooks,
 * the log line) is spent off the API's event loop. Everything that needs the token, the store or the
 * node's state is the main thread's (answer.ts): a request is read and examined here, then passed on
 * with the examination, and answered with what comes back. The app is createHttpApp's, as the API's
 * is, so answers and problems are byte for byte the API's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { systemClock } from '../../clock.js';
import { PpnError } from '../../errors.js';
import { splitTarget } from '../../httpsig/base.js';
import { examineRequestSignature, type Examination } from '../../httpsig/verify.js';
import { readServerTls, reloadTls } from '../../tls/server.js';
import { createHttpApp } from '../http-app.js';
import { LOG_BATCH_BYTES, LOG_FLUSH_MS } from '../request-log.js';
import { CONSOLE_BODY_LIMIT_BYTES, ConsoleParams, ConsoleUpload, Enroll, Heartbeat, NodeParams } from '../routes/agent-schemas.js';
import { registerVersionRoutes } from '../routes/version.js';
import { routeConfigOf } from '../route-config.js';
import type { AgentAnswer, AgentCall, AgentOp, AgentStage, FromWorker, HttpSample, ToWorker, WorkerSettings } from './protocol.js';

const port = parentPort!;
const settings = workerData as WorkerSettings;
const post = (message: FromWorker) => port.postMessage(message);

/**
 * The request log's lines and each answered request's metrics sample, gathered and sent to the main
 * thread together, which writes the lines to its log and counts the samples in the API's metrics:
 * within LOG_FLUSH_MS, or at once when the lines reach LOG_BATCH_BYTES.
 */
function toMainThread(): { write(line: string): void; record(sample: HttpSample): void; flush(): void } {
  let text = '';
  let samples: HttpSample[] = [];
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (text === '' && samples.length === 0) return;
    post({ kind: 'batch', text, samples });
    text = '';
    samples = [];
  };
  return {
    write(line) {
      text += line;
      if (text.length >= LOG_BATCH_BYTES) flush();
      else timer ??= setTimeout(flush, LOG_FLUSH_MS);
    },
    record(sample) {
      samples.push(sample);
      timer ??= setTimeout(flush, LOG_FLUSH_MS);
    },
    flush,
  };
}

const batch = toMainThread();
const tls = settings.tls ? readServerTls(settings.tls) : undefined;
const app = createHttpApp({
  logger: { level: settings.logLevel, stream: batch },
  requestTimeoutMs: settings.requestTimeoutMs,
  maxConnectionsPerAddress: settings.maxConnectionsPerAddress,
  https: tls?.https,
  trustProxy: settings.trustProxy,
  instrument: (app) =>
    app.addHook('onResponse', (request, reply, done) => {
      batch.record([request.method, routeConfigOf(request).url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000]);
      done();
    }),
});

let nextId = 0;
const waiting = new Map<number, (answer: AgentAnswer) => void>();
/** Requests passed on to the main thread: an error after that is its answer, not a reason to ask again. */
const passedOn = new WeakSet<FastifyRequest>();

function ask(call: AgentCall): Promise<AgentAnswer> {
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    post({ kind: 'call', id, call });
  });
}

/** Passes the request on and applies the answer: its headers and principal, then its problem or body. */
async function passOn(request: FastifyRequest, reply: FastifyReply, op: AgentOp, stage: AgentStage, examination: Examination | null): Promise<AgentAnswer> {
  passedOn.add(request);
  const answer = await ask({
    op,
    stage,
    method: request.method,
    params: request.params as Record<string, string>,
    body: stage === 'authenticate' ? undefined : request.body,
    authorization: request.headers.authorization,
    examination,
    requestId: request.id,
    ip: request.ip,
  });
  request.principal = answer.principal;
  for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
  if (answer.problem) {
    const { code, detail, headers, extensions } = answer.problem;
    throw new PpnError(code, detail, { headers, extensions });
  }
  return answer;
}

async function handle(op: AgentOp, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { path, query } = splitTarget(request.url);
  const examination = await examineRequestSignature({ method: request.method, path, query, headers: request.headers, body: request.rawBody ?? undefined }, systemClock);
  // An invalid body is refused only once the caller is admitted, as on the API port.
  if (request.validationError) {
    await passOn(request, reply, op, 'admit', examination);
    throw request.validationError;
  }
  const answer = await passOn(request, reply, op, 'answer', examination);
  reply.code(answer.status);
  return answer.body === null ? reply.send() : reply.type('application/json; charset=utf-8').send(answer.body);
}

await app.register(async (agent) => {
  // A body that could not be read (too large, not JSON) is refused after the token is, as the API
  // checks the token before it reads the body.
  agent.setErrorHandler(async (error, request, reply) => {
    if (!passedOn.has(request)) await passOn(request, reply, opOf(request), 'authenticate', null);
    throw error;
  });
  const body = { attachValidation: true };
  agent.post('/v1/nodes', { ...body, schema: { body: Enroll } }, (request, reply) => handle('enroll', request, reply));
  agent.post('/v1/nodes/:node_id/heartbeat', { ...body, schema: { params: NodeParams, body: Heartbeat } }, (request, reply) => handle('heartbeat', request, reply));
  agent.put(
    '/v1/nodes/:node_id/vms/:vm_id/console',
    { ...body, bodyLimit: CONSOLE_BODY_LIMIT_BYTES, schema: { params: ConsoleParams, body: ConsoleUpload } },
    (request, reply) => handle('console', request, reply),
  );
});
registerVersionRoutes(app);

function opOf(request: FastifyRequest): AgentOp {
  const url = request.routeOptions.url ?? '';
  return url.endsWith('/heartbeat') ? 'heartbeat' : url.endsWith('/console') ? 'console' : 'enroll';
}

port.on('message', (message: ToWorker) => {
  switch (message.kind) {
    case 'answer':
      waiting.get(message.id)?.(message.answer);
      waiting.delete(message.id);
      return;
    case 'flush':
      batch.flush();
      post({ kind: 'flushed' });
      return;
    case 'reload-tls':
      if (settings.tls) reloadTls(app.server as unknown as TlsServer, settings.tls, app.log);
      return;
    case 'close':
      void app.close().finally(() => {
        batch.flush();
        post({ kind: 'closed' });
      });
      return;
  }
});

try {
  const address = await app.listen({ host: settings.host, port: settings.port });
  post({ kind: 'listening', port: (app.server.address() as { port: number }).port, address });
} catch (error) {
  post({ kind: 'failed', message: (error as Error).message });
}
