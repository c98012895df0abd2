/**
 * Editing a data directory's database as someone with access to it would: with the store's own
 * command-line client (`sqlite3` on the SQLite file, `psql` on the PostgreSQL database the directory
 * remembers), for the tamper and rollback tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** A PostgreSQL client program (psql, pg_dump, pg_restore): on PATH, or in the newest installed server's bin directory. */
export function postgresBinary(name = 'psql'): string {
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, name))) return join(dir, name);
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const version of versions) if (existsSync(join(root, version, 'bin', name))) return join(root, version, 'bin', name);
  throw new Error(`${name} is not installed (Debian: apt-get install -y --no-install-recommends postgresql-client)`);
}

/**
 * Runs SQL on the data directory's database with the store's own command-line client and returns
 * what it printed (unaligned, without headers). Fails the test if the client reports an error.
 */
export function dbShell(dataDir: string, statements: string): string {
  const urlFile = join(dataDir, 'database.url');
  const result = existsSync(urlFile)
    ? spawnSync(postgresBinary(), ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', readFileSync(urlFile, 'utf8').trim(), '-c', statements], { encoding: 'utf8' })
    : spawnSync('sqlite3', ['-bail', join(dataDir, 'ppn.sqlite'), statements], { encoding: 'utf8' });
  if (result.error) throw result.error;
  if (result.status !== 0 || result.stderr.trim() !== '') throw new Error(`database client exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

export const count = (dataDir: string, table: string) => Number(dbShell(dataDir, `select count(*) from ${table}`).trim());

/** The statements that remove a table's WORM triggers (src/store/migrations.ts). */
export function dropWorm(dataDir: string, table: string): string {
  return existsSync(join(dataDir, 'database.url')) ? `drop trigger ${table}_worm on ${table};` : `drop trigger ${table}_no_update; drop trigger ${table}_no_delete;`;
}

export const LEDGER_TABLES = ['ledger_entries', 'ledger_nodes', 'ledger_checkpoints'];

/**
 * The statements that cut the ledger back to its first `size` entries, consistently: entries, the
 * tree nodes over any later leaf (node L/i covers leaves i·2^L to (i+1)·2^L − 1) and the checkpoints
 * of larger sizes. What is left passes every check made on the database alone.
 */
export function cutBackTo(dataDir: string, size: number): string {
  const width = existsSync(join(dataDir, 'database.url')) ? '(1::bigint << level)' : '(1 << level)';
  return `${LEDGER_TABLES.map((table) => dropWorm(dataDir, table)).join(' ')}
    delete from ledger_entries where idx >= ${size};
    delete from ledger_nodes where (idx + 1) * ${width} > ${size};
    delete from ledger_checkpoints where size > ${size};`;
}

/** The checkpoint the directory's server remembers (ledger.state), parsed. */
export function rememberedState(dataDir: string): { size: number; root: string; note: string } {
  return JSON.parse(readFileSync(join(dataDir, 'ledger.state'), 'utf8'));
}
