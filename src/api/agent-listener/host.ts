/**
 * Starts the agent listener's worker thread (worker.ts) and keeps it running: its calls are answered
 * on this thread (answer.ts), its log lines written to this process's log, and a worker that ends
 * unexpectedly is started again a second later on the same port. `close` stops it, within a cut-off.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FastifyBaseLogger } from 'fastify';
import type { ServerTlsFiles } from '../../tls/server.js';
import type { RecordHttp } from '../metrics.js';
import type { AnswerAgentCall } from './answer.js';
import type { FromWorker, ToWorker, WorkerSettings } from './protocol.js';

export const RESTART_DELAY_MS = 1000;
export const CLOSE_CUT_OFF_MS = 10_000;

export interface AgentListenerOptions {
  host: string;
  port: number;
  answer: AnswerAgentCall;
  /** The main thread's logger, for the listener's own events (a restart). */
  log: FastifyBaseLogger;
  /** Writes the worker's request log lines (pino JSON lines, batched) to the process's log. */
  writeLog: (lines: string) => void;
  /** Counts the worker's answered requests in the API's HTTP metrics (httpMetricsOf: the same series as the API port's). */
  recordHttp?: RecordHttp;
  logLevel: string;
  /** Serve HTTPS from the files `serve --tls-cert --tls-key` names (the API port's certificate). */
  tls?: ServerTlsFiles;
  requestTimeoutMs?: number;
  maxConnectionsPerAddress?: number;
  trustProxy?: string[];
}

export interface AgentListener {
  /** Where it listens, e.g. http://127.0.0.1:9222. */
  address: string;
  port: number;
  /** Re-reads the TLS files in the worker (on SIGHUP, as the API port does). */
  reloadTls(): void;
  /**
   * Has the worker send the log lines and metrics samples it holds (it sends them within 200 ms
   * anyway); settles once they have been written and counted here.
   */
  flush(): Promise<void>;
  /** Stops accepting, finishes the requests in flight, and ends the worker (within CLOSE_CUT_OFF_MS). */
  close(): Promise<void>;
  /** The worker running now (tests end it to see it come back). */
  worker(): Worker;
}

/**
 * The compiled worker beside this file; under the test runner, which runs this file from src/, the
 * one the build put in dist/ (a worker thread cannot load TypeScript).
 */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(dirname(here), 'worker.js');
  let dir = dirname(here);
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error('the package root (with package.json) was not found above src/api/agent-listener');
    dir = dirname(dir);
  }
  return join(dir, 'dist', 'src', 'api', 'agent-listener', 'worker.js');
}

export async function startAgentListener(options: AgentListenerOptions): Promise<AgentListener> {
  let closing = false;
  let current: Worker;
  let running = false;
  let port = options.port;

  /** Who waits for each flush asked of the running worker, in the order asked (its replies come in that order). */
  let flushed: (() => void)[] = [];

  /** Starts a worker; settles once it listens (or failed to). */
  const start = (): Promise<{ port: number; address: string }> => {
    const settings: WorkerSettings = {
      host: options.host,
      port,
      tls: options.tls,
      logLevel: options.logLevel,
      requestTimeoutMs: options.requestTimeoutMs,
      maxConnectionsPerAddress: options.maxConnectionsPerAddress,
      trustProxy: options.trustProxy,
    };
    const worker = new Worker(workerFile(), { workerData: settings });
    current = worker;
    running = true;
    const send = (message: ToWorker) => worker.postMessage(message);
    return new Promise((resolve, reject) => {
      let listening = false;
      worker.on('message', (message: FromWorker) => {
        switch (message.kind) {
          case 'call':
            void options.answer(message.call).then((answer) => send({ kind: 'answer', id: message.id, answer }));
            return;
          case 'batch':
            if (message.text !== '') options.writeLog(message.text);
            for (const [method, route, status, seconds] of message.samples) options.recordHttp?.(method, route, status, seconds);
            return;
          case 'listening':
            listening = true;
            resolve(message);
            return;
          case 'failed':
            reject(new Error(message.message));
            void worker.terminate();
            return;
          case 'flushed':
            flushed.shift()?.();
            return;
          case 'closed':
            void worker.terminate();
            return;
        }
      });
      worker.on('error', (error) => {
        if (!listening) reject(error);
        else options.log.error({ err: error }, 'the agent listener failed');
      });
      worker.on('exit', (code) => {
        if (worker === current) {
          running = false;
          // A flush the ended worker will never answer: what it held is lost with it.
          for (const done of flushed) done();
          flushed = [];
        }
        if (!listening) reject(new Error(`the agent listener's worker ended with code ${code} before it listened`));
        if (closing || !listening) return;
        options.log.warn({ code, restart_ms: RESTART_DELAY_MS }, `the agent listener's worker ended (exit code ${code}): starting it again`);
        setTimeout(restart, RESTART_DELAY_MS).unref();
      });
    });
  };

  const restart = () => {
    if (closing) return;
    start().then(
      ({ address }) => options.log.info({ address }, 'the agent listener is serving again'),
      (error: unknown) => {
        options.log.error({ err: error }, `the agent listener could not start again: ${(error as Error).message}; trying again`);
        setTimeout(restart, RESTART_DELAY_MS).unref();
      },
    );
  };

  const first = await start();
  // Port 0 asked for any port: a restarted worker takes the one the first was given.
  port = first.port;
  return {
    address: first.address,
    port,
    reloadTls: () => current.postMessage({ kind: 'reload-tls' } satisfies ToWorker),
    worker: () => current,
    flush: () =>
      new Promise<void>((resolve) => {
        if (!running) return resolve();
        flushed.push(resolve);
        current.postMessage({ kind: 'flush' } satisfies ToWorker);
      }),
    async close() {
      closing = true;
      if (!running) return;
      const worker = current;
      const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.postMessage({ kind: 'close' } satisfies ToWorker);
      const cutOff = setTimeout(() => void worker.terminate(), CLOSE_CUT_OFF_MS);
      await ended;
      clearTimeout(cutOff);
    },
  };
}
