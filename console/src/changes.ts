/** A list page's changes (revoke, delete, start…): each runs, then the list is read again at once; a refusal is kept to show. */
import { useState } from 'preact/hooks';

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
