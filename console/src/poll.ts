/** Reads something now and again every `everyMs` while the component shows, without reloading the page. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export const POLL_MS = 5000;

export interface Polled<T> {
  value: T | undefined;
  error: unknown;
  at: Date | undefined;
}

/** A change of `refresh` reads again at once (after the page changed something). */
export function usePolling<T>(read: () => Promise<T>, onUnauthenticated: () => void, everyMs = POLL_MS, refresh = 0): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ value: undefined, error: undefined, at: undefined });
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      let wait = everyMs;
      try {
        const value = await read();
        if (!stopped) setState({ value, error: undefined, at: new Date() });
      } catch (error) {
        if (stopped) return;
        // A revoked or expired token, or a refused signature: the user must sign in again.
        if (error instanceof ApiError && error.problem.status === 401) return onUnauthenticated();
        // A rate limit says when to come back (Retry-After); asking sooner would only be refused.
        if (error instanceof ApiError && error.retryAfter !== undefined) wait = Math.max(wait, error.retryAfter * 1000);
        setState((previous) => ({ ...previous, error }));
      }
      if (!stopped) timer = setTimeout(() => void tick(), wait);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [refresh]);
  return state;
}
