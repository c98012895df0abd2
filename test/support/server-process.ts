/**
 * A real `service-vm-tenant serve` process (the built dist/ code) on a real loopback port with its
 * own data directory, for end-to-end, concurrency and crash tests.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import { send } from '../../src/tls/client.js';
import { freshDatabaseUrl } from './stores.js';

export const CLI = {
  server: resolve('dist/src/cli/service-vm-tenant.js'),
  fs: resolve('dist/src/cli/service-fs.js'),
  ppn: resolve('dist/src/cli/ppn.js'),
  host: resolve('dist/src/cli/service-vm-host.js'),
};

export interface ServerProcess {
  url: string;
  dataDir: string;
  adminToken: string;
  process: ChildProcess;
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit: no chance to flush anything. */
  kill9(): Promise<void>;
}

export function tempDataDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'ppn-e2e-')), '.ppn');
}

/**
 * A second replica's data directory: the same keys, admin token and database URL, as an operator
 * deploys replicas (docs/design/store.md), in a directory of its own.
 */
export function replicaDataDir(source: string): string {
  const copy = tempDataDir();
  mkdirSync(copy, { recursive: true, mode: 0o700 });
  cpSync(join(source, 'keys'), join(copy, 'keys'), { recursive: true });
  for (const file of ['admin.token', 'database.url']) cpSync(join(source, file), join(copy, file));
  return copy;
}

/**
 * Starts a server on the data directory. On the PostgreSQL half of the suite a new directory gets a
 * fresh database, which the directory then remembers, so a restart on it finds the same state.
 * The server listens before its start-up check of the ledger ends; unless `waitForLedgerCheck` is
 * false, this waits (60 s at most) until /readyz no longer says `ledger_verifying`, by when a new
 * directory's admin token is written. `cli` runs another build of service-vm-tenant (an earlier
 * release's, test/upgrade/).
 */
export async function startServer(
  dataDir = tempDataDir(),
  env: Record<string, string> = {},
  options: { umask?: string; args?: string[]; waitForLedgerCheck?: boolean; cli?: string; ca?: string } = {},
): Promise<ServerProcess> {
  const databaseUrl = existsSync(join(dataDir, 'database.url')) || options.args?.includes('--database-url') ? undefined : await freshDatabaseUrl();
  const args = [options.cli ?? CLI.server, 'serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'warn', ...(options.args ?? [])];
  if (databaseUrl) args.push('--database-url', databaseUrl);
  // With a umask, through a shell that sets it and then becomes the server (exec keeps the pid).
  const [command, argv] = options.umask === undefined ? [process.execPath, args] : ['sh', ['-c', `umask ${options.umask} && exec "$0" "$@"`, process.execPath, ...args]];
  const child = spawn(command, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));

  const url = await new Promise<string>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${output}`)), 30_000);
    const check = () => {
      const match = /listening on (https?:\/\/[^\s]+:\d+) /.exec(output);
      if (match) {
        clearTimeout(timer);
        done(match[1]!);
      }
    };
    child.stdout.on('data', check);
    void exited.then(() => fail(new Error(`server exited:\n${output}`)));
  });
  if (options.waitForLedgerCheck !== false) {
    const checked = await within(60_000, async () => (await api(url, 'GET', '/readyz', { ca: options.ca })).body?.code !== 'ledger_verifying', 20);
    if (checked === null) throw new Error(`the server's start-up check of the ledger did not end within 60 s:\n${output}`);
  }
  const tokenFile = join(dataDir, 'admin.token');
  return {
    url,
    dataDir,
    adminToken: options.waitForLedgerCheck === false && !existsSync(tokenFile) ? '' : readFileSync(tokenFile, 'utf8').trim(),
    process: child,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * For a describe block: a `start` that starts servers (as startServer) and stops, after each test,
 * every one still running, so a failed test leaves no process behind.
 */
export function serversStoppedAfterEach(): (dataDir?: string, options?: Parameters<typeof startServer>[2]) => Promise<ServerProcess> {
  const running: ServerProcess[] = [];
  afterEach(async () => {
    for (const server of running.splice(0)) {
      if (server.process.exitCode === null && server.process.signalCode === null) await server.stop();
    }
  });
  return async (dataDir, options) => {
    const server = await startServer(dataDir, {}, options);
    running.push(server);
    return server;
  };
}

/** Runs a CLI to completion; returns exit code and output. */
export function runCli(script: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * runCli without blocking this process's event loop: for a CLI that talks to a server living in the
 * test process itself (a test's HTTP proxy), which spawnSync would starve.
 */
export function runCliAsync(script: string, args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

/**
 * Polls `done` every `everyMs` until it holds; returns the milliseconds it took, or null once
 * `deadlineMs` has passed. For bounds the product promises (revocation within 1 s, failover within 5 s).
 */
export async function within(deadlineMs: number, done: () => Promise<boolean>, everyMs = 20): Promise<number | null> {
  const start = Date.now();
  while (Date.now() - start <= deadlineMs) {
    if (await done()) return Date.now() - start;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return null;
}

/** `service-fs read --json` on a data directory: the entries, parsed, after checking it exited cleanly. */
export function readLedgerJson<T = Record<string, any>>(dataDir: string, ...args: string[]): T[] {
  const out = runCli(CLI.fs, ['read', '--data-dir', dataDir, '--json', ...args]);
  if (out.status !== 0 || out.stderr !== '') throw new Error(`service-fs read exited ${out.status}: ${out.stderr}`);
  return out.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);
}

/** One request over real HTTP; `signWith` signs it as the token's holder (RFC 9421, for `pop` tokens). */
export async function api(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; signWith?: KeyObject; ca?: string | undefined; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const body = options.body !== undefined ? JSON.stringify(options.body) : undefined;
  if (options.signWith) {
    const request = { method, ...splitTarget(path), body: body === undefined ? undefined : Buffer.from(body) };
    Object.assign(headers, signRequest(request, { privateKey: options.signWith, clock: systemClock }));
  }
  // A server with a test CA's certificate is reached through the clients' own sender, which takes a CA.
  const res =
    options.ca === undefined
      ? await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) })
      : await send(`${base}${path}`, { method, headers, body }, { ca: options.ca });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}
