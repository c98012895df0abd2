/** Reads something now and again every `everyMs` while the component shows, without reloading the page. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export const POLL_MS = 5000;

export interface Polled<T> {
  value: T | undefined;
  error: unknown;
  at: Date | undefined;
}

export function usePolling<T>(read: () => Promise<T>, onUnauthenticated: () => void, everyMs = POLL_MS): Polled<T> {
  const [state, setState] = useState<Polled<T>>({ value: undefined, error: undefined, at: undefined });
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const value = await read();
        if (!stopped) setState({ value, error: undefined, at: new Date() });
      } catch (error) {
        if (stopped) return;
        if (error instanceof ApiError && error.problem.status === 401) return onUnauthenticated();
        setState((previous) => ({ ...previous, error }));
      }
      // A rate limit says when to come back; otherwise the usual interval.
      if (!stopped) timer = setTimeout(() => void tick(), everyMs);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, []);
  return state;
}
