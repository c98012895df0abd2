/**
 * Leader election for background work across replicas: the leader is whichever server holds one
 * session-level advisory lock on its own dedicated connection. When the leader dies, PostgreSQL ends
 * its session and frees the lock; the others try every TRY_EVERY_MS, so one takes over within about
 * a second (SPEC §1 asks for 5 s). TCP keepalive bounds how long a silently vanished leader holds it.
 *
 * One loop owns at most one connection at a time, and never starts a step before the last one
 * ended: a lock won on a connection the loop has since dropped would be held by no one who knows
 * it, for the life of the process, and no replica would lead. A slow connect or a slow keepalive
 * query only delays the loop; the leader steps down when its connection fails, not when it is slow.
 */
import { Socket } from 'node:net';
import pg from 'pg';
import type { LeaderCallback, StopElection } from '../store.js';

export const LEADER_LOCK_KEY = 0x70706e6c_0001; // "ppnl" + 1: never the ledger's key
const TRY_EVERY_MS = 500;
/** How long stop() waits for a polite goodbye (which frees the lock at once) before cutting the connection. */
const GOODBYE_MS = 1000;

/** The election's one connection, with its socket so that a connect in flight can be abandoned. */
interface Session {
  client: pg.Client;
  socket: Socket;
  connected: boolean;
}

export function electPostgresLeader(url: string, onChange: LeaderCallback): StopElection {
  let stopped = false;
  let leader = false;
  let session: Session | null = null;
  let wake: (() => void) | null = null;

  const setLeader = (value: boolean) => {
    if (value === leader || (value && stopped)) return;
    leader = value;
    onChange(value);
  };

  const open = (): Session => {
    const socket = new Socket();
    const client = new pg.Client({ connectionString: url, keepAlive: true, keepAliveInitialDelayMillis: 1000, stream: () => socket });
    const opened: Session = { client, socket, connected: false };
    // The lock lives and dies with this session: once it fails, this server no longer leads.
    const lost = () => {
      if (session !== opened) return;
      setLeader(false);
      wake?.();
    };
    client.on('error', lost);
    client.on('end', lost);
    return opened;
  };

  const close = async (old: Session) => {
    if (old.connected) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((done) => (timer = setTimeout(done, GOODBYE_MS).unref()));
      await Promise.race([old.client.end().catch(() => undefined), late]);
      clearTimeout(timer);
    }
    old.socket.destroy();
  };

  const pause = () =>
    new Promise<void>((done) => {
      const timer = setTimeout(() => wake?.(), TRY_EVERY_MS);
      timer.unref();
      wake = () => {
        clearTimeout(timer);
        wake = null;
        done();
      };
    });

  const step = async (current: Session) => {
    if (!current.connected) {
      await current.client.connect();
      current.connected = true;
    }
    if (stopped) return;
    if (leader) {
      await current.client.query('select 1');
    } else {
      const { rows } = await current.client.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [LEADER_LOCK_KEY]);
      setLeader(rows[0]?.ok === true);
    }
  };

  let stepping = false;
  const loop = async () => {
    while (!stopped) {
      const current = (session ??= open());
      stepping = true;
      try {
        await step(current);
      } catch {
        // The connection failed or was abandoned: whatever lock it held goes with it.
        setLeader(false);
        await close(current);
        session = null;
      }
      stepping = false;
      if (!stopped) await pause();
    }
    setLeader(false);
    if (session) await close(session);
    session = null;
  };
  const running = loop();

  return async () => {
    stopped = true;
    setLeader(false);
    wake?.();
    // A connect or query in flight may take long (a slow database is when it matters): cut it
    // rather than wait. PostgreSQL ends the session, and frees the lock, when the socket closes.
    if (stepping) session?.socket.destroy();
    await running;
  };
}
