/**
 * LISTEN on a channel over a dedicated connection, reconnecting when it drops. Notifications only
 * make changes arrive sooner: whoever listens also polls, so one missed while reconnecting is
 * picked up by the next poll.
 */
import pg from 'pg';

const RECONNECT_MS = 1000;

export function listenPostgres(url: string, channel: string, onNotify: () => void): () => Promise<void> {
  let client: pg.Client | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;

  const connect = async () => {
    if (stopped) return;
    const fresh = new pg.Client({ connectionString: url, keepAlive: true });
    const retry = () => {
      if (client === fresh) client = null;
      void fresh.end().catch(() => undefined);
      if (!stopped && !timer) {
        timer = setTimeout(() => {
          timer = null;
          void connect();
        }, RECONNECT_MS);
        timer.unref();
      }
    };
    fresh.on('error', retry);
    fresh.on('end', retry);
    fresh.on('notification', () => onNotify());
    try {
      await fresh.connect();
      await fresh.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      client = fresh;
      // Changes made while we were not listening.
      onNotify();
    } catch {
      retry();
    }
  };
  void connect();

  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    const old = client;
    client = null;
    await old?.end().catch(() => undefined);
  };
}
