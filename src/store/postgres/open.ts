/**
 * The scale-out store: PostgreSQL through `pg` under Kysely. Several API replicas may share one
 * database; what keeps them correct is in the queries (tenant row locks, the ledger lock), not here.
 * int8 and numeric come back as strings from `pg`; every such value in this schema fits a double,
 * so they are parsed to numbers for this pool only.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from '../schema.js';
import type { Store } from '../store.js';
import { electPostgresLeader } from './leader.js';
import { listenPostgres } from './listen.js';

const INT8_OID = 20;
const NUMERIC_OID = 1700;

/** Lock waits end with an error instead of hanging: the API answers 503 and the client retries. */
const LOCK_TIMEOUT_MS = 5000;

export function openPostgresStore(url: string): Store {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    options: `-c lock_timeout=${LOCK_TIMEOUT_MS}`,
    types: {
      getTypeParser: (oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID || oid === NUMERIC_OID ? (value: string) => Number(value) : (pg.types.getTypeParser(oid, format) as (value: string) => unknown),
    },
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    location: redactUrl(url),
    electLeader: (onChange) => electPostgresLeader(url, onChange),
    listen: (channel, onNotify) => listenPostgres(url, channel, onNotify),
    close: () => db.destroy(),
  };
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}
