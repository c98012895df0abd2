/**
 * Add before you remove (docs/design/store.md): during a rolling upgrade the previous release keeps
 * running on the database the new one migrated, so every migration keeps each table and column
 * that was there before it, with its type, unless it is marked a removal, which may drop only what
 * the code stopped using (src/store/schema.ts no longer has it) in an earlier release. Checked by
 * running the migrations one at a time on a real store (SQLite, or PostgreSQL with
 * PPN_TEST_STORE=postgres) and comparing the schema before and after each. And the other half of
 * the bargain: a server older than its database runs on it when every newer migration is recorded
 * as additive, and refuses, naming them, when one is not.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Migrator, sql, type Kysely } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { buildMigrations, latestMigration, schemaChanges, type SchemaChange } from '../../src/store/migrations.js';
import { openPostgresStore } from '../../src/store/postgres/open.js';
import { openSqliteStore } from '../../src/store/sqlite/open.js';
import { migrateStore, type Store } from '../../src/store/store.js';
import { dropDatabase, freshDatabaseUrl, TEST_STORE } from '../support/stores.js';

/** Every table's columns and their types, e.g. "tenants.max_vms" → "integer". */
async function snapshotSchema(db: Kysely<unknown>): Promise<Map<string, string>> {
  const columns = new Map<string, string>();
  for (const table of await db.introspection.getTables()) {
    columns.set(table.name, 'table');
    for (const column of table.columns) columns.set(`${table.name}.${column.name}`, column.dataType.toLowerCase());
  }
  return columns;
}

/** The tables and columns the code's typed schema (src/store/schema.ts) still declares. */
function declaredInCode(): Set<string> {
  const source = readFileSync('src/store/schema.ts', 'utf8');
  const declared = new Set<string>();
  const database = /export interface Database \{([^}]*)\}/.exec(source)![1]!;
  for (const [, table, type] of database.matchAll(/(\w+): (\w+);/g)) {
    declared.add(table!);
    const body = new RegExp(`export interface ${type} \\{([\\s\\S]*?)\\n\\}`).exec(source)![1]!;
    for (const [, column] of body.matchAll(/^ {2}(\w+)\??:/gm)) declared.add(`${table}.${column}`);
  }
  return declared;
}

const minorOf = (version: string) => Number(version.split('.')[1]);

/** What each migration breaks of the rule, as sentences; [] when all keep it. */
async function ruleBreaks(store: Store, changes: Record<string, SchemaChange>): Promise<string[]> {
  const db = store.db as unknown as Kysely<unknown>;
  const migrator = new Migrator({ db, provider: { getMigrations: async () => buildMigrations(store.dialect, changes) } });
  const code = declaredInCode();
  const breaks: string[] = [];
  let before = await snapshotSchema(db);
  for (const name of Object.keys(changes).sort()) {
    const { error } = await migrator.migrateTo(name);
    if (error) throw error instanceof Error ? error : new Error(`migrating to ${name} failed`, { cause: error });
    const after = await snapshotSchema(db);
    const gone = [...before].filter(([key, type]) => after.get(key) !== type && !key.startsWith('kysely_migration')).map(([key]) => key);
    const change = changes[name]!;
    if (change.kind === 'additive') {
      for (const key of gone) breaks.push(`${name} is marked additive but drops or changes ${key}`);
    } else {
      const declared = new Set(change.removes ?? []);
      for (const key of gone) if (!declared.has(key.split('.')[0]!) && !declared.has(key)) breaks.push(`${name} removes ${key}, which it does not declare`);
      for (const key of declared) if (code.has(key)) breaks.push(`${name} removes ${key}, which src/store/schema.ts still declares`);
      if (!change.release || !change.unusedSince || minorOf(change.release) < minorOf(change.unusedSince) + 1) {
        breaks.push(
          `${name} must ship at least one release after the one whose code stopped using what it removes (release ${change.release}, unused since ${change.unusedSince})`,
        );
      }
    }
    before = after;
  }
  return breaks;
}

describe(`migrations add before they remove (${TEST_STORE})`, () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function emptyStore(): Promise<Store> {
    const dir = mkdtempSync(join(tmpdir(), 'ppn-migrations-'));
    const url = await freshDatabaseUrl();
    const store = url ? openPostgresStore(url) : openSqliteStore(join(dir, 'ppn.sqlite'));
    cleanups.push(async () => {
      await store.close();
      await dropDatabase(url);
      rmSync(dir, { recursive: true, force: true });
    });
    return store;
  }

  const futureTable = (kind: SchemaChange['kind'], extra: Partial<SchemaChange> = {}): SchemaChange => ({
    kind,
    ...extra,
    async up(db) {
      await db.schema
        .createTable('future_things')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .execute();
    },
  });

  it('every migration keeps every table and column before it, with its type, or is a removal of what the code no longer uses', async () => {
    const store = await emptyStore();
    expect(await ruleBreaks(store, schemaChanges(store.dialect))).toEqual([]);
  });

  it('the check catches a migration marked additive that drops a column, and a removal of a column the code still reads', async () => {
    const store = await emptyStore();
    const dropColumn = async (db: Kysely<unknown>) => {
      await db.schema.alterTable('tokens').dropColumn('description').execute();
    };
    const changes = { ...schemaChanges(store.dialect), '9001_drop_description': { kind: 'additive', up: dropColumn } as SchemaChange };
    expect(await ruleBreaks(store, changes)).toEqual(['9001_drop_description is marked additive but drops or changes tokens.description']);

    const other = await emptyStore();
    const removal = { kind: 'removal', removes: ['tokens.description'], unusedSince: '0.2.0', release: '0.2.0', up: dropColumn } as SchemaChange;
    expect(await ruleBreaks(other, { ...schemaChanges(other.dialect), '9001_drop_description': removal })).toEqual([
      '9001_drop_description removes tokens.description, which src/store/schema.ts still declares',
      '9001_drop_description must ship at least one release after the one whose code stopped using what it removes (release 0.2.0, unused since 0.2.0)',
    ]);
  });

  it("records every migration's kind in the database, for servers older than it", async () => {
    const store = await emptyStore();
    await migrateStore(store);
    const recorded = (await sql<{ name: string; kind: string }>`SELECT name, kind FROM migration_kinds ORDER BY name`.execute(store.db)).rows;
    expect(recorded).toEqual(Object.entries(schemaChanges(store.dialect)).map(([name, change]) => ({ name, kind: change.kind })));
    expect(recorded.at(-1)!.name).toBe(latestMigration());
  });

  it('a server older than its database runs on it when every newer migration is additive', async () => {
    const store = await emptyStore();
    await migrateStore(store, { ...schemaChanges(store.dialect), '9001_future_things': futureTable('additive') });
    await migrateStore(store);
    await migrateStore(store);
  });

  it('a server older than its database refuses it, naming the migration, when a newer one is a removal', async () => {
    const store = await emptyStore();
    await migrateStore(store, { ...schemaChanges(store.dialect), '9001_future_things': futureTable('removal', { removes: [], unusedSince: '0.2.0', release: '0.3.0' }) });
    await expect(migrateStore(store)).rejects.toThrow(
      'the database was migrated by a newer release (9001_future_things) that this release cannot run beside: 9001_future_things (removal) not additive; run the release that migrated it, or a newer one',
    );
  });

  it('a server older than its database refuses it when a newer migration has no recorded kind', async () => {
    const store = await emptyStore();
    await migrateStore(store, { ...schemaChanges(store.dialect), '9001_future_things': futureTable('additive') });
    await sql`DELETE FROM migration_kinds WHERE name = '9001_future_things'`.execute(store.db);
    await expect(migrateStore(store)).rejects.toThrow('9001_future_things (kind not recorded) not additive');
  });
});
