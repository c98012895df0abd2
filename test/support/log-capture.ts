/** A pino destination that keeps the server's log lines, parsed, for a test to read. */
import { Writable } from 'node:stream';

export interface LogCapture {
  /** Pass as AppOptions.logger. */
  logger: Record<string, unknown>;
  lines(): Record<string, unknown>[];
  /** The lines written for one request id. */
  linesFor(requestId: string): Record<string, unknown>[];
}

export function captureLog(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      partial += chunk.toString('utf8');
      const complete = partial.split('\n');
      partial = complete.pop()!;
      for (const line of complete) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return {
    logger: { level: 'info', stream },
    lines: () => [...lines],
    linesFor: (requestId) => lines.filter((line) => line.reqId === requestId),
  };
}
