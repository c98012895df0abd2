/**
 * The background scrub (SPEC §8, docs/design/ledger.md): the start-up check reads only what was
 * added since the checkpoint the server remembers, so the history before it is checked here, by the
 * elected server, in a loop: the whole check of entries [0, n) and the checkpoints up to n, where n
 * is the head this server verified when the pass began, at a bounded rate (entries per second), then
 * a pause. The root it recomputes at n must be the verified head's. A pass stops at the page where
 * it meets the first difference and hands it to `found`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TreeHead } from '../ledger/checkpoint.js';
import type { VerifierKey } from '../ledger/note.js';
import type { Store } from '../store/store.js';
import { checkLedger, type LedgerProblem } from './ledger-check.js';

/** Entries a second: about a tenth of one core on the benchmark machine (docs/benchmarks.md). */
export const DEFAULT_SCRUB_RATE = 5000;
/** Between two passes. */
export const DEFAULT_SCRUB_PAUSE_MS = 60_000;
/**
 * Entries a page: about 2 ms of reading and hashing on the benchmark machine, the longest the scrub
 * holds the event loop at once (a 5,000-entry page held it for 30 ms, and every request arriving
 * meanwhile waited).
 */
export const SCRUB_PAGE = 250;
/** How often a server that is not the leader looks again. */
const STANDBY_POLL_MS = 1000;

export interface ScrubOptions {
  store: Store;
  key: VerifierKey;
  /** Entries checked per second, at most. */
  ratePerSecond: number;
  pauseMs: number;
  /** Whether this server should scrub now (it runs the background work, and nothing is wrong yet). */
  active: () => boolean;
  /** The head the pass checks up to, read when it begins. */
  verifiedHead: () => TreeHead;
  found: (problem: LedgerProblem) => void;
  passed: (head: TreeHead, ms: number) => void;
  /** A pass that threw (the store unreachable, say): the next one comes after the pause. */
  failed: (error: unknown) => void;
}

/** One pass over [0, head.size): the problem at the lowest index it met, or null. */
export async function scrubOnce(
  store: Store,
  key: VerifierKey,
  head: TreeHead,
  ratePerSecond: number,
  signal?: AbortSignal,
  active: () => boolean = () => true,
): Promise<LedgerProblem | null> {
  const started = performance.now();
  let done = 0;
  // Sleeps after each page until the average since the start is back down to the rate.
  const pace = async (entries: number): Promise<void> => {
    done += entries;
    const ahead = (done / ratePerSecond) * 1000 - (performance.now() - started);
    if (ahead > 0) await sleep(ahead, undefined, { signal }).catch(() => undefined);
  };
  const stop = new AbortController();
  const abort = () => stop.abort();
  signal?.addEventListener('abort', abort);
  try {
    const result = await checkLedger(store, key, {
      end: head.size,
      pace: async (entries) => {
        await pace(entries);
        if (!active()) stop.abort();
      },
      signal: stop.signal,
      stopAtFirstProblem: true,
      pageSize: SCRUB_PAGE,
    });
    if (result.problem || stop.signal.aborted) return result.problem;
    if (!result.root.equals(head.root)) {
      return {
        index: Math.max(0, head.size - 1),
        what: `the entries recompute to a root at size ${head.size} other than the one this server verified (${head.root.toString('hex')})`,
      };
    }
    return null;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
}

/** Runs passes until stopped; returns the function that stops it (and waits for the pass in hand). */
export function startScrub(options: ScrubOptions): () => Promise<void> {
  const stopping = new AbortController();
  const loop = async (): Promise<void> => {
    while (!stopping.signal.aborted) {
      const head = options.verifiedHead();
      if (!options.active() || head.size === 0) {
        await sleep(STANDBY_POLL_MS, undefined, { signal: stopping.signal }).catch(() => undefined);
        continue;
      }
      const started = performance.now();
      try {
        const problem = await scrubOnce(options.store, options.key, head, options.ratePerSecond, stopping.signal, options.active);
        if (stopping.signal.aborted || !options.active()) continue;
        if (problem) {
          options.found(problem);
          return;
        }
        options.passed(head, Math.round(performance.now() - started));
      } catch (error) {
        if (stopping.signal.aborted) return;
        options.failed(error);
      }
      await sleep(options.pauseMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  };
  const running = loop();
  return async () => {
    stopping.abort();
    await running.catch(() => undefined);
  };
}
