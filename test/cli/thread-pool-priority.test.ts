/**
 * The server's libuv thread pool runs at nice 19, and every other thread at the priority the server
 * was started with (src/thread-pool-priority.ts): a pool thread woken for a heartbeat's signature
 * check must not pre-empt the event loop. Read from /proc, where field 19 of a thread's stat line is
 * its nice value; a real server process, and the function itself in this test's own process.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readlink } from 'node:fs/promises';
import { getPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { POOL_NICE, lowerThreadPoolPriority, threadPoolSize } from '../../src/thread-pool-priority.js';
import { startServer, type ServerProcess } from '../support/server-process.js';

function niceOf(pid: number, tid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Every thread of the process, by its nice value. */
function threadsByNice(pid: number): Map<number, number[]> {
  const byNice = new Map<number, number[]>();
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    const nice = niceOf(pid, tid);
    byNice.set(nice, [...(byNice.get(nice) ?? []), tid]);
  }
  return byNice;
}

/** The threads that run fs work handed to the pool: a readlink of /proc/thread-self names its thread. */
async function threadsRunningPoolWork(): Promise<Set<number>> {
  const links = await Promise.all(Array.from({ length: 64 }, () => readlink('/proc/thread-self')));
  return new Set(links.map((link) => Number(link.slice(link.lastIndexOf('/') + 1))));
}

const servers: ServerProcess[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

describe('the thread pool at nice 19', () => {
  it('lowers every pool thread of this process, and no other thread', async () => {
    const started = getPriority();
    const before = threadsByNice(process.pid);
    const { lowered, size } = await lowerThreadPoolPriority();
    expect(size).toBe(threadPoolSize());
    expect(lowered).toHaveLength(size);
    for (const tid of lowered) expect(niceOf(process.pid, tid)).toBe(POOL_NICE);
    // Pool work runs on the lowered threads only, and the event loop's thread is not one of them.
    const workers = await threadsRunningPoolWork();
    for (const tid of workers) expect(lowered).toContain(tid);
    expect(lowered).not.toContain(process.pid);
    expect(niceOf(process.pid, process.pid)).toBe(started);
    // Every other thread (V8's, the signal thread) kept the priority it had.
    const others = [...before.values()].flat().filter((tid) => !lowered.includes(tid));
    for (const tid of others) expect(niceOf(process.pid, tid)).toBe(started);
  });

  it('reads UV_THREADPOOL_SIZE as libuv does', () => {
    expect(threadPoolSize(undefined)).toBe(4);
    expect(threadPoolSize('6')).toBe(6);
    expect(threadPoolSize(' 7 threads')).toBe(7);
    expect(threadPoolSize('')).toBe(1);
    expect(threadPoolSize('0')).toBe(1);
    expect(threadPoolSize('many')).toBe(1);
    expect(threadPoolSize('5000')).toBe(1024);
    expect(threadPoolSize('-2')).toBe(1024);
  });

  it.each([
    ['the default pool', {}, 4],
    ['UV_THREADPOOL_SIZE=6', { UV_THREADPOOL_SIZE: '6' }, 6],
    ['a UV_THREADPOOL_SIZE that is no number (libuv starts one thread)', { UV_THREADPOOL_SIZE: 'many' }, 1],
  ])('a server process runs %s at nice 19 and its event loop where it started', async (_, env: Record<string, string>, expected: number) => {
    const server = await startServer(undefined, env);
    servers.push(server);
    const pid = server.process.pid!;
    const byNice = threadsByNice(pid);
    expect(byNice.get(POOL_NICE)).toHaveLength(expected);
    expect(byNice.get(POOL_NICE)).not.toContain(pid);
    expect(niceOf(pid, pid)).toBe(getPriority());
    expect(server.output()).not.toMatch(/thread pool/);
  });
});
