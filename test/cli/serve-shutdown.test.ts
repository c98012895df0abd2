/**
 * A stopping server finishes the requests in flight, but no longer than `--shutdown-timeout`: a
 * client that never finishes sending its request (or any step of the stop that hangs) must not keep
 * the process alive, holding its port and its data directory, past what a supervisor waits for.
 * Real server processes and a raw TCP client.
 */
import { connect } from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { api, serversStoppedAfterEach, within } from '../support/server-process.js';

/** Opens a connection and sends the start of a request that never ends (no blank line). */
async function halfSentRequest(url: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await once(socket, 'connect');
  socket.write('GET /healthz HTTP/1.1\r\nHost: ppn\r\nX-Slow: ');
  socket.on('error', () => undefined);
  return socket;
}

describe('stopping the server', () => {
  const start = serversStoppedAfterEach();

  it('exits within --shutdown-timeout while a client holds a request it never finishes, saying so', async () => {
    const server = await start(undefined, { args: ['--shutdown-timeout', '2', '--log-level', 'info'] });
    const socket = await halfSentRequest(server.url);
    const stopped = Date.now();
    server.process.kill('SIGTERM');
    // Node's own limit on a request's headers is a minute: without the deadline the server waits for it.
    const exited = await within(15_000, async () => server.process.exitCode !== null || server.process.signalCode !== null, 50);
    expect(exited, 'the server is still running 15 s after SIGTERM').not.toBeNull();
    expect(Date.now() - stopped).toBeGreaterThanOrEqual(2000);
    expect(server.process.exitCode).toBe(1);
    expect(server.output()).toMatch(/shutdown did not finish within 2 s \(finishing requests in flight\): exiting anyway/);
    socket.destroy();
  });

  it('exits at once, with status 0, when nothing is in flight', async () => {
    const server = await start(undefined, { args: ['--shutdown-timeout', '30'] });
    expect((await api(server.url, 'GET', '/healthz')).status).toBe(200);
    expect(await server.stop()).toBe(0);
  });

  it('refuses a shutdown timeout that is not a whole number of seconds', async () => {
    await expect(start(undefined, { args: ['--shutdown-timeout', 'soon'] })).rejects.toThrow(/--shutdown-timeout/);
  });
});
