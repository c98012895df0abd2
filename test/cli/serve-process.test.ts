/**
 * The server process as the README starts it: `npm start`, and `npx service-vm-tenant serve`. npm
 * passes SIGTERM on to the process it started; the server must get it, or at least stop when npm is
 * gone, and not live on re-parented, holding the port and the data-directory lock. Its start-up
 * lines are JSON like the rest of its log, except on a terminal. Real npm processes, and a real
 * pseudo-terminal from util-linux `script`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, tempDataDir, within } from '../support/server-process.js';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  server.listen(port, '127.0.0.1');
  const [outcome] = await Promise.race([once(server, 'listening').then(() => ['free']), once(server, 'error').then(() => ['busy'])]);
  if (outcome === 'free') {
    server.close();
    await once(server, 'close');
  }
  return outcome === 'free';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface UnderNpm {
  npm: ChildProcess;
  port: number;
  /** The server's pid, from its JSON start-up line. */
  serverPid: number;
  /** Its start-up lines, parsed. */
  startup: { level: number; pid: number; msg: string }[];
}

const started: number[] = [];

afterEach(() => {
  // Whatever a failed test left behind.
  for (const pid of started.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

async function startUnderNpm(command: string, args: string[]): Promise<UnderNpm> {
  const port = await freePort();
  const npm = spawn(command, args, {
    env: { ...process.env, PPN_DATA_DIR: tempDataDir(), PPN_LISTEN: `127.0.0.1:${port}`, PPN_LOG_LEVEL: 'warn', npm_config_yes: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // The server listens before its start-up check of the ledger ends; a new directory's admin token
  // is written once it passes.
  await within(120_000, async () => (output.includes('listening on') && output.includes('platform-admin token')) || npm.exitCode !== null, 50);
  const startup = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as UnderNpm['startup'][number]);
  const listening = startup.find((line) => line.msg.includes('listening on'));
  if (!listening) throw new Error(`the server did not start under ${command}:\n${output}`);
  started.push(listening.pid);
  return { npm, port, serverPid: listening.pid, startup };
}

describe('running the server through npm', () => {
  it.each(['npm start', 'npx service-vm-tenant serve'])(
    'SIGTERM to `%s` stops the server: its process is gone and its port free',
    async (line) => {
      const [command, ...args] = line.split(' ');
      const run = await startUnderNpm(command!, args);
      expect(run.serverPid).not.toBe(run.npm.pid);
      run.npm.kill('SIGTERM');
      await once(run.npm, 'exit');
      expect(await within(10_000, async () => !isAlive(run.serverPid) && (await portIsFree(run.port)))).not.toBeNull();
    },
    180_000,
  );

  it('the start-up lines are pino JSON lines at info level when stdout is not a terminal', async () => {
    const run = await startUnderNpm('npm', ['start']);
    const messages = run.startup.filter((line) => line.pid === run.serverPid).map((line) => [line.level, line.msg]);
    expect(messages).toContainEqual([30, expect.stringMatching(/^wrote a platform-admin token \(tok-\S+, expires \S+\) to \S+admin\.token$/)]);
    expect(messages).toContainEqual([30, expect.stringMatching(`^service-vm-tenant listening on http://127.0.0.1:${run.port} \\(data: `)]);
    run.npm.kill('SIGTERM');
    await once(run.npm, 'exit');
  });
});

describe('the start-up lines on a terminal', () => {
  it('are readable text, not JSON', async () => {
    const dataDir = tempDataDir();
    const command = `"${process.execPath}" "${CLI.server}" serve --data-dir "${dataDir}" --listen 127.0.0.1:0`;
    const terminal = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    terminal.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    expect(await within(30_000, async () => /listening on http:\/\/\S+ \(data: /.test(output) && output.includes('platform-admin token'))).not.toBeNull();
    // The server named itself in its lock: stop it by that pid.
    const lock = new BetterSqlite3(join(dataDir, 'server.lock'), { readonly: true });
    const { pid } = lock.prepare('SELECT pid FROM holder').get() as { pid: number };
    lock.close();
    started.push(pid);
    process.kill(pid, 'SIGTERM');
    await once(terminal, 'exit');
    const lines = output.split(/\r?\n/).filter((line) => /wrote a platform-admin token|listening on/.test(line));
    expect(lines.map((line) => line.startsWith('wrote a platform-admin token') || line.startsWith('service-vm-tenant listening on'))).toEqual([true, true]);
  });
});
