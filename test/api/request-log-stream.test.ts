/**
 * The server's request log is written in batches, off the event loop (src/api/request-log.ts,
 * serverLogStream): what an operator reads must still be every line, and soon. A real server
 * process at the default level (info), its stdout read as an operator's collector reads it.
 */
import { describe, expect, it } from 'vitest';
import { LOG_FLUSH_MS } from '../../src/api/request-log.js';
import { serversStoppedAfterEach, within } from '../support/server-process.js';

const start = serversStoppedAfterEach();

function requestLines(output: string, route: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.msg === 'request completed' && line.route === route);
}

describe('the server log stream', () => {
  it('a stopped server has written the line of every request it answered', async () => {
    const server = await start(undefined, { args: ['--log-level', 'info'] });
    const answered = 300;
    for (let i = 0; i < answered; i++) expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect(await server.stop()).toBe(0);
    const lines = requestLines(server.output(), '/healthz');
    expect(lines).toHaveLength(answered);
    expect(lines.every((line) => line.status === 200 && typeof line.reqId === 'string')).toBe(true);
  });

  it("a quiet server's request line is written soon after its answer, not held for a batch", async () => {
    const server = await start(undefined, { args: ['--log-level', 'info'] });
    // Its own request id: the start-up wait polled /readyz too, so the route alone is not unique.
    expect((await fetch(`${server.url}/readyz`, { headers: { 'x-request-id': 'quiet-line-1' } })).status).toBe(200);
    // The stream flushes every LOG_FLUSH_MS whatever has gathered, so one line far short of a batch
    // still arrives; the deadline leaves room for a busy machine, and a line held for its batch
    // (LOG_BATCH_BYTES) would never come.
    const seen = await within(5000 + LOG_FLUSH_MS, async () => requestLines(server.output(), '/readyz').some((line) => line.reqId === 'quiet-line-1'));
    expect(seen).not.toBeNull();
  });
});
