/**
 * Which store the suite runs against. `npm test` runs it twice: PPN_TEST_STORE unset (SQLite files)
 * and PPN_TEST_STORE=postgres, where every harness and server gets a fresh database on the server
 * named by PPN_TEST_DATABASE_URL (scripts/with-postgres.sh starts a throwaway one).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

export const TEST_STORE: 'sqlite' | 'postgres' = process.env.PPN_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

function adminUrl(): string {
  const url = process.env.PPN_TEST_DATABASE_URL;
  if (!url) throw new Error('PPN_TEST_STORE=postgres needs PPN_TEST_DATABASE_URL (scripts/with-postgres.sh sets it)');
  return url;
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A new, empty database for one harness or server; undefined when the suite runs on SQLite. */
export async function freshDatabaseUrl(): Promise<string | undefined> {
  if (TEST_STORE === 'sqlite') return undefined;
  const name = `ppn_test_${randomBytes(6).toString('hex')}`;
  await withAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropDatabase(url: string | undefined): Promise<void> {
  if (!url) return;
  const name = new URL(url).pathname.slice(1);
  await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/**
 * Holds `table` of a data directory's PostgreSQL database locked (ACCESS EXCLUSIVE) from a connection
 * of its own, as another process could; returns the function that releases it.
 */
export async function lockPostgresTable(dataDir: string, table: string): Promise<() => Promise<void>> {
  const blocker = new pg.Client({ connectionString: readFileSync(join(dataDir, 'database.url'), 'utf8').trim() });
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  return async () => {
    await blocker.query('ROLLBACK');
    await blocker.end();
  };
}
