/**
 * `serve --agent-listen HOST:PORT` (docs/operations.md, docs/design/fleet.md): the node agents' routes
 * on a second port, from a worker thread. Real server processes: the option's usage errors, a port
 * already taken, and a server that says where the agent routes are served, answers there, and stops
 * cleanly with it.
 */
import { createServer } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CLI, runCliAsync, serversStoppedAfterEach, tempDataDir } from '../support/server-process.js';

describe('serve --agent-listen', () => {
  const start = serversStoppedAfterEach();

  it('refuses a malformed address as a usage error naming the option', async () => {
    for (const text of ['9222', 'localhost', '127.0.0.1:99999', ':9222']) {
      const result = await runCliAsync(CLI.server, ['serve', '--data-dir', tempDataDir(), '--listen', '127.0.0.1:0', '--agent-listen', text]);
      expect(result.status, result.stderr).toBe(2);
      expect(result.stderr).toContain(`--agent-listen wants HOST:PORT, e.g. 0.0.0.0:9222; got "${text}"`);
    }
    const fromEnv = await runCliAsync(CLI.server, ['serve', '--data-dir', tempDataDir(), '--listen', '127.0.0.1:0'], { PPN_AGENT_LISTEN: 'nowhere' });
    expect(fromEnv.status).toBe(2);
    expect(fromEnv.stderr).toContain('--agent-listen wants HOST:PORT');
  });

  it('fails to start, with exit status 1 and the reason, when the port is taken', async () => {
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as { port: number };
    try {
      const result = await runCliAsync(CLI.server, ['serve', '--data-dir', tempDataDir(), '--listen', '127.0.0.1:0', '--agent-listen', `127.0.0.1:${port}`]);
      expect(result.status, result.stderr).toBe(1);
      expect(result.stderr).toContain(`error: --agent-listen 127.0.0.1:${port}: cannot serve the agent routes there:`);
      expect(result.stderr).toContain('EADDRINUSE');
    } finally {
      taken.close();
    }
  });

  it('says where the agent routes are served, answers there, and stops cleanly', async () => {
    const server = await start(undefined, { args: ['--agent-listen', '127.0.0.1:0'] });
    const said = /node agents' routes \(enroll, heartbeat, console\) are also served on (http:\/\/127\.0\.0\.1:\d+)/;
    // The API port listens first; the agent port a moment later.
    await expect.poll(() => server.output(), { timeout: 10_000 }).toMatch(said);
    const match = said.exec(server.output());
    const version = await fetch(`${match![1]}/v1/version`);
    expect(version.status).toBe(200);
    const unsigned = await fetch(`${match![1]}/v1/nodes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(unsigned.status).toBe(401);
    expect(await server.stop()).toBe(0);
  });
});
