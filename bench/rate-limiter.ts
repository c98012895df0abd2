/**
 * `node --expose-gc dist/bench/rate-limiter.js`: the rate limiter's memory for many tenants under
 * the traffic actually sent (docs/design/quotas-and-rate-limits.md). Every tenant has the schema's
 * cap, 100,000 requests per minute; what they send differs by scenario. The heap is measured after a
 * full collection, before and after the traffic, and again once the window has passed and a sweep
 * dropped the quiet tenants.
 */
import { LeasedLimiter, type SlotBank } from '../src/ratelimit/leases.js';
import { SlidingWindowLimiter, WINDOW_MS } from '../src/ratelimit/sliding-window.js';

const TENANTS = Number(process.env.BENCH_TENANTS ?? 10_000);
const LIMIT = 100_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');
const collect = globalThis.gc;

function heap(): number {
  collect();
  collect();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

interface Scenario {
  name: string;
  /** Request times (ms from T0) of one tenant. */
  times: number[];
}

const scenarios: Scenario[] = [
  { name: '10 requests in one second', times: Array.from({ length: 10 }, (_, i) => i * 50) },
  { name: 'one request a second for a minute', times: Array.from({ length: 60 }, (_, i) => i * 1000) },
  { name: '600 requests over a minute (10 a second)', times: Array.from({ length: 600 }, (_, i) => i * 100) },
];

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

for (const scenario of scenarios) {
  const limiter = new SlidingWindowLimiter();
  const before = heap();
  for (const at of scenario.times) for (let t = 0; t < TENANTS; t++) limiter.take(`tenant-${t}`, LIMIT, T0 + at);
  const during = heap() - before;
  limiter.take('other', LIMIT, T0 + scenario.times.at(-1)! + WINDOW_MS + 1000);
  const after = heap() - before;
  process.stdout.write(
    `one server, ${TENANTS} tenants, ${scenario.name}: ${kib(during)} in all, ${(during / TENANTS).toFixed(0)} B per tenant; ` +
      `a minute later ${limiter.size} tenant(s) kept, ${kib(Math.max(0, after))}\n`,
  );
}

// One tenant at the cap: 100,000 requests spread over the minute.
{
  const limiter = new SlidingWindowLimiter();
  const before = heap();
  let admitted = 0;
  for (let i = 0; i < LIMIT; i++) if (limiter.take('busy', LIMIT, T0 + Math.floor((i * WINDOW_MS) / LIMIT)).allowed) admitted++;
  process.stdout.write(`one server, one tenant at the cap (${admitted} admitted in a minute): ${kib(heap() - before)}\n`);
}

// A replica's leases: a bank that always grants, so only the replica's own state is measured.
{
  const bank: SlotBank = {
    grant: async ({ want, now }) => ({ granted: want, window: { seconds: [Math.floor(now / 1000)], counts: [want] } }),
    giveBack: async () => undefined,
    forget: async () => undefined,
  };
  const limiter = new LeasedLimiter(bank);
  const before = heap();
  for (let i = 0; i < 10; i++) for (let t = 0; t < TENANTS; t++) await limiter.take(`tenant-${t}`, LIMIT, T0 + i * 50);
  const during = heap() - before;
  await limiter.settle(T0 + 2000);
  process.stdout.write(
    `one replica, ${TENANTS} tenants, 10 requests in one second: ${kib(during)}, ${(during / TENANTS).toFixed(0)} B per tenant; ` +
      `a second later ${limiter.size} kept\n`,
  );
}
