/**
 * The product as the issue 11 benchmark runs it: the real `service-vm-tenant serve` (the built CLI)
 * in its own process, at the log level asked (the default is info), with its background work on, its
 * log lines written to a file as an operator's would be. Everything here goes through the CLI, the
 * HTTP API or the store files, so the harness measures whatever the product does now.
 *
 * Also: the CPU time and resident memory of any process from /proc, a free loopback port, and one
 * temporary directory for the whole run that is removed at the end, on Ctrl-C and on SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const SERVER_CLI = join(HERE, '../src/cli/service-vm-tenant.js');
export const FS_CLI = join(HERE, '../src/cli/service-fs.js');

// ---------------------------------------------------------------------------------------------
// The run's temporary directory and child processes, cleaned up however the run ends

const children = new Set<ChildProcess>();
let runDir: string | undefined;

function cleanUp(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  if (runDir) rmSync(runDir, { recursive: true, force: true });
  runDir = undefined;
}

process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanUp();
    process.exit(130);
  });
}

/** A new directory inside the run's temporary directory (created on first use). */
export function scratchDir(name: string): string {
  runDir ??= mkdtempSync(join(tmpdir(), 'ppn-bench11-'));
  const dir = mkdtempSync(join(runDir, `${name}-`));
  return dir;
}

/** Removes the run's temporary directory and stops every process still running. */
export function finishRun(): void {
  cleanUp();
}

/** Spawns a child that is killed and forgotten when the run ends. */
export function spawnTracked(command: string, args: string[], options: Parameters<typeof spawn>[2]): ChildProcess {
  const child = spawn(command, args, options);
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

// ---------------------------------------------------------------------------------------------
// /proc

const TICKS_PER_SECOND = 100;

/** The process's CPU time so far (user + system), in µs, from /proc/<pid>/stat. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces), closed by the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / TICKS_PER_SECOND;
}

/** The process's resident memory, in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : NaN;
}

/** A loopback port free now (the kernel picks it; a race with another process is possible but rare). */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Polls `url` until it answers `status`; the time that took in seconds, from `since` (hrtime ns). */
export async function waitFor(url: string, status: number, since: bigint, deadlineSeconds: number, exited?: () => boolean): Promise<number> {
  for (;;) {
    const seconds = Number(process.hrtime.bigint() - since) / 1e9;
    if (seconds > deadlineSeconds) throw new Error(`${url} did not answer ${status} within ${deadlineSeconds} s`);
    if (exited?.()) throw new Error(`the process behind ${url} exited`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === status) return Number(process.hrtime.bigint() - since) / 1e9;
    } catch {
      // Not listening yet.
    }
    await new Promise((done) => setTimeout(done, 10));
  }
}

// ---------------------------------------------------------------------------------------------
// The product

export interface Product {
  url: string;
  pid: number;
  dataDir: string;
  adminToken: string;
  logFile: string;
  /** Seconds from spawn to /healthz 200 and to /readyz 200. */
  healthzSeconds: number;
  readyzSeconds: number;
  stop(): Promise<void>;
}

export interface ProductOptions {
  /** Reuse this data directory (a restart, or a replica's copy); else a new one. */
  dataDir?: string;
  /** PostgreSQL URL for a new data directory; a reused one remembers its own. */
  databaseUrl?: string;
  /** pino level; the product's default is info. */
  logLevel?: string;
  /** How long to wait for /readyz (a start on a large ledger takes long before the issue 11 changes). */
  readySeconds?: number;
  /** Options for node itself, before the script (e.g. --inspect for liveHeapBytes). */
  nodeArgs?: string[];
}

/** `service-vm-tenant serve` on a free port, waited for until /readyz answers 200. */
export async function startProduct(options: ProductOptions = {}): Promise<Product> {
  const dataDir = options.dataDir ?? join(scratchDir('product'), '.ppn');
  mkdirSync(dirname(dataDir), { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(dirname(dataDir), `serve-${port}.log`);
  const log = openSync(logFile, 'a');
  const args = [
    ...(options.nodeArgs ?? []),
    SERVER_CLI,
    'serve',
    '--data-dir',
    dataDir,
    '--listen',
    `127.0.0.1:${port}`,
    ...(options.logLevel ? ['--log-level', options.logLevel] : []),
  ];
  if (options.databaseUrl) args.push('--database-url', options.databaseUrl);
  const env = { ...process.env };
  for (const name of ['PPN_DATABASE_URL', 'PPN_DATA_DIR', 'PPN_LISTEN', 'PPN_LOG_LEVEL']) delete env[name];
  const started = process.hrtime.bigint();
  const child = spawnTracked(process.execPath, args, { stdio: ['ignore', log, log], env });
  closeSync(log);
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const stop = async (): Promise<void> => {
    if (exited()) return;
    const gone = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await gone;
  };
  try {
    const healthzSeconds = await waitFor(`${url}/healthz`, 200, started, options.readySeconds ?? 120, exited);
    const readyzSeconds = await waitFor(`${url}/readyz`, 200, started, options.readySeconds ?? 120, exited);
    const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    return { url, pid: child.pid!, dataDir, adminToken, logFile, healthzSeconds, readyzSeconds, stop };
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${readFileSync(logFile, 'utf8').slice(-2000)}`, { cause: error });
  }
}

/** A second replica's data directory: the same keys, admin token and database URL (docs/design/store.md). */
export function replicaDataDir(source: string): string {
  const copy = join(scratchDir('replica'), '.ppn');
  mkdirSync(copy, { recursive: true, mode: 0o700 });
  // cpSync keeps the files' modes: the keys stay readable by their owner only.
  for (const entry of ['keys', 'admin.token', 'database.url']) cpSync(join(source, entry), join(copy, entry), { recursive: true });
  return copy;
}

// ---------------------------------------------------------------------------------------------
// The HTTP API

export async function api<T = Record<string, unknown>>(url: string, method: string, path: string, token: string, body?: unknown): Promise<T> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/** A holder key for a token: tokens name their holder, and a bearer read needs no signature. */
const HOLDER = Buffer.alloc(32, 7).toString('base64url');

/** A tenant with room for the benchmark (the API's caps), and a tenant-admin bearer token of it. */
export async function benchTenant(product: Pick<Product, 'url' | 'adminToken'>, tenantId: string, rpm = 100_000): Promise<string> {
  await api(product.url, 'POST', '/v1/tenants', product.adminToken, {
    tenant_id: tenantId,
    display_name: tenantId,
    max_vms: 100_000,
    storage_quota_gb: 1_000_000,
    api_rate_limit_rpm: rpm,
  });
  const issued = await api<{ token: string }>(product.url, 'POST', `/v1/tenants/${tenantId}/tokens`, product.adminToken, {
    subject_pubkey: HOLDER,
    scope: 'service:tenant-admin',
    expires_in_seconds: 86_400,
  });
  return issued.token;
}

/** The VM body every create of the benchmark sends. */
export const VM_BODY = JSON.stringify({ vcpus: 1, memory_mb: 1024, disk_gb: 10 });

/**
 * The memory a process started with `--inspect=127.0.0.1:PORT` keeps alive after a full garbage
 * collection, in bytes: its V8 heap in use plus memory outside the heap held by JS objects (typed
 * arrays' buffers), without the garbage an idle process may hold for long. Asked through the
 * DevTools protocol from a short-lived node (Node 20 has WebSocket behind a flag).
 */
export async function liveMemoryBytes(inspectPort: number): Promise<number> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const script = `
    const ws = new WebSocket(process.argv[1]);
    const send = (id, method, params) => ws.send(JSON.stringify({ id, method, params }));
    ws.onopen = () => { send(1, 'HeapProfiler.collectGarbage'); };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.id === 1) send(2, 'Runtime.evaluate', { expression: '(({ heapUsed, external }) => heapUsed + external)(process.memoryUsage())', returnByValue: true });
      if (message.id === 2) { process.stdout.write(String(message.result.result.value)); ws.close(); }
    };`;
  const child = spawnSync(process.execPath, ['--experimental-websocket', '--no-warnings', '-e', script, targets[0]!.webSocketDebuggerUrl], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const bytes = Number(child.stdout);
  if (!Number.isFinite(bytes) || bytes <= 0) throw new Error(`no memory figure from the inspector: ${child.stdout} ${child.stderr}`);
  return bytes;
}
