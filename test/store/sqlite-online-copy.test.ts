/**
 * The online copy `service-vm-tenant backup` makes of the embedded store (src/store/sqlite/backup.ts):
 * a real SQLite file in WAL mode written to by another connection between the copy's steps. SQLite
 * restarts a copy in several steps after such a write; the copy must still finish, and hold one
 * consistent state: every transaction wholly or not at all.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { copySqliteOnline, type CopyProgress } from '../../src/store/sqlite/backup.js';

describe('the online copy of a SQLite store', () => {
  it('finishes while another connection writes between its steps, and holds every transaction wholly or not at all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ppn-online-copy-'));
    const source = join(dir, 'source.sqlite');
    const writer = new BetterSqlite3(source);
    writer.pragma('journal_mode = WAL');
    writer.exec('CREATE TABLE pairs (id INTEGER PRIMARY KEY, pair INTEGER NOT NULL, pad BLOB NOT NULL)');
    const insertPair = writer.transaction((pair: number) => {
      const insert = writer.prepare('INSERT INTO pairs (pair, pad) VALUES (?, ?)');
      insert.run(pair, Buffer.alloc(2000));
      insert.run(pair, Buffer.alloc(2000));
    });
    // About 4000 pages of 4 KiB: several steps of the copy.
    let pairs = 0;
    for (; pairs < 4000; pairs++) insertPair(pairs);

    // Another connection commits a pair between every two steps of the copy (each step runs in its own turn of the event loop).
    let writing = true;
    const write = () => {
      if (!writing) return;
      insertPair(pairs++);
      setImmediate(write);
    };
    setImmediate(write);
    const seen: CopyProgress[] = [];
    const destination = join(dir, 'copy.sqlite');
    const pages = await copySqliteOnline(source, destination, (p) => seen.push(p));
    writing = false;

    expect(seen.some((p) => p.restarted)).toBe(true);
    expect(pages).toBeGreaterThan(3000);
    const copy = new BetterSqlite3(destination, { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    const halves = copy.prepare('SELECT count(*) AS n FROM (SELECT pair FROM pairs GROUP BY pair HAVING count(*) <> 2)').get() as { n: number };
    expect(halves.n).toBe(0);
    const copied = (copy.prepare('SELECT count(DISTINCT pair) AS n FROM pairs').get() as { n: number }).n;
    expect(copied).toBeGreaterThanOrEqual(4000);
    expect(copied).toBeLessThanOrEqual(pairs);
    copy.close();
    writer.close();
  });
});
