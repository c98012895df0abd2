/**
 * A QMP client (QEMU Machine Protocol): newline-delimited JSON over the VM's unix socket. Each call
 * opens a connection, reads the greeting, leaves capabilities negotiation with `qmp_capabilities`,
 * runs one command and closes, so no connection outlives an agent that may be killed at any time.
 * Asynchronous events (`{"event": ...}`) interleaved with replies are skipped.
 */
import { createConnection } from 'node:net';

export class QmpError extends Error {}

/** QMP's run states (qapi/run-state.json), e.g. "running", "paused", "prelaunch", "shutdown". */
export interface QmpStatus {
  status: string;
  running: boolean;
}

/** Runs one QMP command; rejects with a QmpError on a QMP error reply, a closed socket or after `timeoutMs`. */
export function qmpExecute(socketPath: string, command: string, timeoutMs = 2000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    let buffered = '';
    let phase: 'greeting' | 'capabilities' | 'command' = 'greeting';
    let settled = false;
    const finish = (error: Error | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value);
    };
    const timer = setTimeout(() => finish(new QmpError(`QMP ${command}: no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('error', (error) => finish(new QmpError(`QMP ${command}: ${error.message}`, { cause: error })));
    socket.on('close', () => finish(new QmpError(`QMP ${command}: the socket closed before the answer`)));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line === '') continue;
        let message: Record<string, unknown>;
        try {
          message = JSON.parse(line) as Record<string, unknown>;
        } catch {
          finish(new QmpError(`QMP ${command}: not JSON: ${line.slice(0, 200)}`));
          return;
        }
        if ('event' in message) continue;
        if (phase === 'greeting') {
          if (!('QMP' in message)) return finish(new QmpError(`QMP ${command}: no greeting`));
          phase = 'capabilities';
          socket.write(`${JSON.stringify({ execute: 'qmp_capabilities' })}\n`);
        } else if ('error' in message) {
          const { class: kind, desc } = message.error as { class?: string; desc?: string };
          return finish(new QmpError(`QMP ${phase === 'command' ? command : 'qmp_capabilities'}: ${kind ?? 'Error'}: ${desc ?? ''}`));
        } else if (phase === 'capabilities') {
          phase = 'command';
          socket.write(`${JSON.stringify({ execute: command })}\n`);
        } else {
          return finish(undefined, message.return);
        }
      }
    });
  });
}

export async function qmpQueryStatus(socketPath: string, timeoutMs?: number): Promise<QmpStatus> {
  const reply = (await qmpExecute(socketPath, 'query-status', timeoutMs)) as Partial<QmpStatus> | undefined;
  if (typeof reply?.status !== 'string') throw new QmpError('QMP query-status: no status in the answer');
  return { status: reply.status, running: reply.running === true };
}
