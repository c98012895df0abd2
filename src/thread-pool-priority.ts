/**
 * The server's event loop must not wait for its own helper threads. Work handed to libuv's thread
 * pool (a heartbeat's Ed25519 check, src/httpsig/verify.ts) wakes a pool thread, and on a busy
 * machine the kernel often runs that thread on the event loop's own core, at once, ahead of the
 * event loop: every request then waits for the check it was meant to skip. Run at the lowest
 * priority (nice 19), a pool thread takes a core the event loop leaves idle, or the other core,
 * and no longer pre-empts the loop.
 *
 * Linux only: a thread's nice value is its own there (setpriority(2) takes a thread id), and
 * /proc/thread-self names the thread that reads it. A readlink of it run on the pool (fs's callback
 * form) names a pool thread; enough of them at once name them all.
 */
import { readlink } from 'node:fs/promises';
import { setPriority } from 'node:os';

/** nice 19: the lowest priority an unprivileged process can give its own threads. */
export const POOL_NICE = 19;
const ATTEMPTS = 50;

export interface PoolPriority {
  /** The pool threads found and lowered. */
  lowered: number[];
  /** The pool's size (UV_THREADPOOL_SIZE, default 4). */
  size: number;
}

export async function lowerThreadPoolPriority(): Promise<PoolPriority> {
  const size = threadPoolSize();
  if (process.platform !== 'linux') return { lowered: [], size };
  const found = new Set<number>();
  try {
    for (let attempt = 0; attempt < ATTEMPTS && found.size < size; attempt++) {
      const links = await Promise.all(Array.from({ length: size * 4 }, () => readlink('/proc/thread-self')));
      for (const link of links) {
        const tid = Number(link.slice(link.lastIndexOf('/') + 1));
        if (Number.isInteger(tid) && tid > 0 && tid !== process.pid) found.add(tid);
      }
    }
  } catch {
    // No /proc/thread-self (a kernel before 3.17, or no /proc): the pool keeps its priority.
  }
  const lowered: number[] = [];
  for (const tid of found) {
    try {
      setPriority(tid, POOL_NICE);
      lowered.push(tid);
    } catch {
      // A thread that is gone, or a system that refuses: the pool keeps its priority.
    }
  }
  return { lowered, size };
}

/**
 * The number of threads libuv starts, read as libuv reads UV_THREADPOOL_SIZE: unset, 4; otherwise
 * C's atoi of it, where 0 (or no number at all) means 1 and anything above 1,024 (or below 0,
 * which wraps around as an unsigned number) means 1,024.
 */
export function threadPoolSize(value = process.env.UV_THREADPOOL_SIZE): number {
  if (value === undefined) return 4;
  const parsed = Number.parseInt(value, 10);
  const wanted = Number.isNaN(parsed) ? 0 : parsed;
  if (wanted === 0) return 1;
  return wanted < 0 || wanted > 1024 ? 1024 : wanted;
}
