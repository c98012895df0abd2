/**
 * The PostgreSQL leader election on its own, through a real TCP proxy that makes the database slow
 * to reach (test/support/delaying-proxy.ts): the loop owns at most one connection at a time, leads
 * with it however slow the first connect, leaves neither a connection nor the lock behind when
 * stopped, steps down when its connection is lost and leads again after reconnecting, and does not
 * step down because a keepalive query is slow.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { electPostgresLeader, LEADER_LOCK_KEY } from '../../src/store/postgres/leader.js';
import type { StopElection } from '../../src/store/store.js';
import { DelayingProxy } from '../support/delaying-proxy.js';
import { within } from '../support/server-process.js';
import { dropDatabase, freshDatabaseUrl } from '../support/stores.js';

let databaseUrl: string;
let proxy: DelayingProxy;
const running: StopElection[] = [];

/** Whether another session could take the leader lock now (it lets go at once if so). */
async function lockIsFree(): Promise<boolean> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [LEADER_LOCK_KEY]);
    if (rows[0]!.ok) await client.query('select pg_advisory_unlock($1)', [LEADER_LOCK_KEY]);
    return rows[0]!.ok;
  } finally {
    await client.end();
  }
}

/** Starts an election through the proxy; `changes` records every call of its callback. */
function elect(): { changes: boolean[]; stop: StopElection } {
  const changes: boolean[] = [];
  const stop = electPostgresLeader(proxy.urlFor(databaseUrl), (leader) => changes.push(leader));
  running.push(stop);
  return { changes, stop };
}

const isLeader = (changes: boolean[]) => async () => changes.at(-1) === true;

beforeAll(async () => {
  databaseUrl = (await freshDatabaseUrl())!;
});
afterAll(async () => {
  await dropDatabase(databaseUrl);
});
beforeEach(async () => {
  proxy = await DelayingProxy.start(databaseUrl);
});
afterEach(async () => {
  for (const stop of running.splice(0)) await stop();
  await proxy.close();
});

describe('PostgreSQL leader election', () => {
  it('leads on its one connection when the first connect takes longer than the retry interval', async () => {
    proxy.holdNewConnections(1500);
    const { changes, stop } = elect();
    expect(await within(5000, isLeader(changes)), 'never became leader').not.toBeNull();
    expect(changes).toEqual([true]);
    expect(proxy.accepted).toBe(1);
    expect(proxy.maxOpen).toBe(1);
    expect(await lockIsFree()).toBe(false);

    await stop();
    expect(changes).toEqual([true, false]);
    expect(proxy.open).toBe(0);
    expect(await within(2000, lockIsFree), 'the lock outlived the election').not.toBeNull();
  });

  it('leaves no connection and no lock behind when stopped while its first connect is in flight', async () => {
    proxy.holdNewConnections(3000);
    const { changes, stop } = elect();
    expect(await within(2000, async () => proxy.accepted === 1)).not.toBeNull();

    await stop();
    // Whatever the proxy was holding is now either forwarded or abandoned by its client.
    await proxy.settled();
    expect(proxy.open).toBe(0);
    expect(changes).toEqual([]);
    expect(await lockIsFree()).toBe(true);
  });

  it('steps down when its connection is lost, then reconnects and leads again', async () => {
    const { changes } = elect();
    expect(await within(5000, isLeader(changes))).not.toBeNull();

    proxy.cut();
    expect(await within(2000, async () => changes.length >= 2), 'did not step down').not.toBeNull();
    expect(changes.slice(0, 2)).toEqual([true, false]);
    expect(await within(5000, isLeader(changes)), 'did not lead again').not.toBeNull();
    expect(changes).toEqual([true, false, true]);
    expect(proxy.accepted).toBe(2);
    expect(proxy.maxOpen).toBe(1);
    expect(await lockIsFree()).toBe(false);
  });

  it('keeps leading while a keepalive query is slow', async () => {
    const { changes } = elect();
    expect(await within(5000, isLeader(changes))).not.toBeNull();

    // The database answers nothing for three retry intervals: keepalives wait, unanswered.
    proxy.stall();
    expect(await within(1500, async () => changes.length > 1)).toBeNull();
    proxy.unstall();
    expect(await within(1500, async () => changes.length > 1)).toBeNull();
    expect(changes).toEqual([true]);
    expect(proxy.accepted).toBe(1);
    expect(await lockIsFree()).toBe(false);
  });

  it('elects exactly one of two servers whose connects all complete together', async () => {
    proxy.holdNewConnections(1500);
    const [a, b] = [elect(), elect()];
    expect(await within(5000, async () => a.changes.includes(true) || b.changes.includes(true))).not.toBeNull();
    // Both have had time to try the lock at least twice more.
    expect(await within(1500, async () => a.changes.length + b.changes.length > 1)).toBeNull();
    expect([...a.changes, ...b.changes]).toEqual([true]);
    expect(proxy.maxOpen).toBe(2);
  });
});
