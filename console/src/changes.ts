/** A list page's changes (revoke, delete, start…): each runs, then the list is read again at once; a refusal is kept to show. */
import { useState } from 'preact/hooks';
import { callApi } from './api.js';
import { usePolling, type Polled } from './poll.js';
import type { Session } from './session.js';

export interface ListChanges {
  /** Pass to usePolling: it reads again when this changes. */
  refresh: number;
  reload: () => void;
  /** The last change's refusal, until the next change. */
  error: unknown;
  /** Runs `change`; true when it went through. */
  run: (change: () => Promise<unknown>) => Promise<boolean>;
}

export function useListChanges(): ListChanges {
  const [refresh, setRefresh] = useState(0);
  const [error, setError] = useState<unknown>(undefined);
  const reload = () => setRefresh((n) => n + 1);
  const run = async (change: () => Promise<unknown>) => {
    setError(undefined);
    try {
      await change();
      reload();
      return true;
    } catch (caught) {
      setError(caught);
      return false;
    }
  };
  return { refresh, reload, error, run };
}

/** A list the API answers at `target` (its `items`), polled, with the changes made to it: each change reads it again at once. */
export function usePolledList<T>(session: Session, target: string, onUnauthenticated: () => void): { polled: Polled<T[]>; changes: ListChanges } {
  const changes = useListChanges();
  const polled = usePolling(async () => (await callApi<{ items: T[] }>(session, 'GET', target)).body.items, onUnauthenticated, undefined, changes.refresh);
  return { polled, changes };
}
