/**
 * The schema, as ordered migrations that run unchanged on every store. Dialect-specific statements
 * (the WORM triggers) are chosen by the `dialect` argument, never by sniffing the connection.
 *
 * Add before you remove (docs/design/store.md): during a rolling upgrade the previous release's
 * servers keep running on a database the new release has migrated, so a migration is `additive`
 * (new tables, new nullable or defaulted columns, new or dropped indexes: nothing the previous
 * release reads or writes goes away or changes meaning) unless it is a `removal`, which may only drop
 * what the code stopped using at least one release earlier. Each migration's kind is recorded in
 * the database (migration_kinds), so that a server older than the database can tell whether it may
 * run on it (migrateStore). test/store/migrations-additive.test.ts holds every migration to this.
 */
import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from './dialect.js';

export type MigrationKind = 'additive' | 'removal';

export interface SchemaChange {
  kind: MigrationKind;
  /** A removal's tables and columns ("table" or "table.column") it drops or renames. */
  removes?: readonly string[];
  /** A removal's first release whose code no longer used what it removes. */
  unusedSince?: string;
  /** A removal's release: at least one minor version after unusedSince. */
  release?: string;
  up(db: Kysely<unknown>): Promise<void>;
}

/** The migration that creates migration_kinds; it records its own kind and every earlier one's. */
const KINDS_MIGRATION = '0015_migration_kinds';

/** Every migration, in the form Kysely's Migrator runs, each recording its kind once it has run. */
export function buildMigrations(dialect: Dialect, changes: Record<string, SchemaChange> = schemaChanges(dialect)): Record<string, Migration> {
  const names = Object.keys(changes).sort();
  const kindsFrom = names.indexOf(KINDS_MIGRATION);
  return Object.fromEntries(
    names.map((name, i) => {
      const up = async (db: Kysely<unknown>) => {
        await changes[name]!.up(db);
        if (kindsFrom < 0 || i < kindsFrom) return;
        for (const recorded of i === kindsFrom ? names.slice(0, i + 1) : [name]) {
          await sql`INSERT INTO migration_kinds (name, kind) VALUES (${recorded}, ${changes[recorded]!.kind})`.execute(db);
        }
      };
      return [name, { up }];
    }),
  );
}

/** The name of the latest migration this code knows: the schema it expects (GET /v1/version). */
export function latestMigration(): string {
  return Object.keys(schemaChanges('sqlite')).sort().at(-1)!;
}

/**
 * Brings the store's schema up to this release's. A database that a newer release has already
 * migrated further is accepted as it is when every migration this code does not know is recorded as
 * additive (a rolling upgrade, or a step back to the previous release); any other is refused, naming
 * the migrations, since this code may misread what they changed.
 */
export async function migrateSchema<DB>(db: Kysely<DB>, dialect: Dialect, changes: Record<string, SchemaChange> = schemaChanges(dialect)): Promise<void> {
  if (await acceptNewerSchema(db, changes)) return;
  const migrator = new Migrator({ db, provider: { getMigrations: async () => buildMigrations(dialect, changes) } });
  const { error } = await migrator.migrateToLatest();
  if (!error) return;
  // A newer server may have migrated the database between the look above and the migrator's.
  if (await acceptNewerSchema(db, changes)) return;
  throw error instanceof Error ? error : new Error('migration failed', { cause: error });
}

/** True when the database holds migrations unknown to `changes`, all recorded as additive; throws if some are not. */
async function acceptNewerSchema<DB>(db: Kysely<DB>, changes: Record<string, SchemaChange>): Promise<boolean> {
  const tables = new Set((await db.introspection.getTables({ withInternalKyselyTables: true })).map((table) => table.name));
  if (!tables.has('kysely_migration')) return false;
  const applied = (await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(db)).rows.map((row) => row.name);
  const unknown = applied.filter((name) => !(name in changes)).sort();
  if (unknown.length === 0) return false;
  const kinds = new Map<string, string>();
  if (tables.has('migration_kinds')) {
    for (const row of (await sql<{ name: string; kind: string }>`SELECT name, kind FROM migration_kinds`.execute(db)).rows) kinds.set(row.name, row.kind);
  }
  const refused = unknown.filter((name) => kinds.get(name) !== 'additive');
  const missing = Object.keys(changes).filter((name) => !applied.includes(name));
  if (refused.length > 0 || missing.length > 0) {
    const why =
      refused.length > 0
        ? `${refused.map((name) => `${name} (${kinds.get(name) ?? 'kind not recorded'})`).join(', ')} not additive`
        : `${missing.join(', ')} of this release not applied`;
    throw new Error(
      `the database was migrated by a newer release (${unknown.join(', ')}) that this release cannot run beside: ${why}; run the release that migrated it, or a newer one`,
    );
  }
  return true;
}

export function schemaChanges(dialect: Dialect): Record<string, SchemaChange> {
  return {
    '0001_initial': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('tenants')
          .addColumn('tenant_id', 'text', (c) => c.primaryKey())
          .addColumn('display_name', 'text', (c) => c.notNull())
          .addColumn('max_vms', 'integer', (c) => c.notNull())
          .addColumn('storage_quota_gb', 'integer', (c) => c.notNull())
          .addColumn('api_rate_limit_rpm', 'integer', (c) => c.notNull())
          .addColumn('max_vcpus', 'integer')
          .addColumn('max_memory_mb', 'integer')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('vm_generation', 'bigint', (c) => c.notNull().defaultTo(0))
          .execute();

        await db.schema
          .createTable('tokens')
          .addColumn('token_id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text')
          .addColumn('subject_pubkey', 'text', (c) => c.notNull())
          .addColumn('scopes', 'text', (c) => c.notNull())
          .addColumn('limits', 'text')
          .addColumn('pop', 'integer', (c) => c.notNull())
          .addColumn('issued_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('issued_by', 'text')
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema.createIndex('tokens_by_tenant').on('tokens').columns(['tenant_id', 'token_id']).execute();

        await db.schema
          .createTable('vms')
          .addColumn('vm_id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.tenant_id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('vcpus', 'integer', (c) => c.notNull())
          .addColumn('memory_mb', 'integer', (c) => c.notNull())
          .addColumn('disk_gb', 'integer', (c) => c.notNull())
          .addColumn('image', 'text')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('desired_state', 'text', (c) => c.notNull())
          .addColumn('node_id', 'text')
          .addColumn('reason', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addUniqueConstraint('vms_name_unique_in_tenant', ['tenant_id', 'name'])
          .execute();
        await db.schema.createIndex('vms_by_tenant').on('vms').columns(['tenant_id', 'vm_id']).execute();
        // Covers the usage sum of every quota decision, so it reads the index alone.
        await db.schema.createIndex('vms_usage').on('vms').columns(['tenant_id', 'vcpus', 'memory_mb', 'disk_gb']).execute();

        await db.schema
          .createTable('ledger_entries')
          .addColumn('idx', 'bigint', (c) => c.primaryKey())
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('event_type', 'text', (c) => c.notNull())
          .addColumn('tenant_id', 'text')
          .addColumn('vm_id', 'text')
          .addColumn('node_id', 'text')
          .addColumn('token_id', 'text')
          .addColumn('actor_token_id', 'text')
          .addColumn('entry', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('ledger_by_tenant').on('ledger_entries').columns(['tenant_id', 'idx']).execute();
        await db.schema.createIndex('ledger_by_event').on('ledger_entries').columns(['event_type', 'idx']).execute();
        for (const column of ['vm_id', 'node_id', 'token_id', 'actor_token_id']) {
          await db.schema.createIndex(`ledger_by_${column}`).on('ledger_entries').columns([column, 'idx']).execute();
        }

        await createWormTriggers(db, dialect, 'ledger_entries', true);
      },
    },
    '0002_rate_events': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('rate_events')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('at_ms', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('rate_events_by_tenant').on('rate_events').columns(['tenant_id', 'at_ms']).execute();
      },
    },
    '0003_ledger_nodes': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('ledger_nodes')
          .addColumn('level', 'integer', (c) => c.notNull())
          .addColumn('idx', 'bigint', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('ledger_nodes_pk', ['level', 'idx'])
          .execute();
        await createWormTriggers(db, dialect, 'ledger_nodes', false);
      },
    },
    '0004_ledger_checkpoints': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('ledger_checkpoints')
          .addColumn('size', 'bigint', (c) => c.primaryKey())
          .addColumn('note', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await createWormTriggers(db, dialect, 'ledger_checkpoints', false);
      },
    },
    '0005_platform_keys': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('platform_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('sealed_private_key', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('retired_at', 'text')
          .execute();
        // At most one active key, whatever two writers race to do.
        await sql.raw(`CREATE UNIQUE INDEX platform_keys_one_active ON platform_keys (state) WHERE state = 'active'`).execute(db);
      },
    },
    // Proof of possession: the nonce record replicas share, and the tenant switch that demands a
    // signature on every request under its tokens (docs/design/request-signatures.md).
    '0006_request_nonces': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('request_nonces')
          .addColumn('keyid', 'text', (c) => c.notNull())
          .addColumn('nonce', 'text', (c) => c.notNull())
          .addColumn('expires_at_ms', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('request_nonces_pk', ['keyid', 'nonce'])
          .execute();
        await db.schema.createIndex('request_nonces_expiry').on('request_nonces').column('expires_at_ms').execute();
        await db.schema
          .alterTable('tenants')
          .addColumn('require_pop', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
      },
    },
    '0007_token_limits': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        // The chain of token block ids a VM was created under (JSON array), so its delete can free
        // the usage it added to each block. Null for VMs created before sub-quotas.
        await db.schema.alterTable('vms').addColumn('token_chain', 'text').execute();
        // The limited blocks a token issued through the API was issued under (JSON array of
        // {jti, lim}): its creates count against them too, so a capped issuer cannot mint its way out.
        await db.schema.alterTable('tokens').addColumn('quota_lineage', 'text').execute();
        await db.schema
          .createTable('token_block_usage')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('block_id', 'text', (c) => c.notNull())
          .addColumn('vms', 'bigint', (c) => c.notNull())
          .addColumn('storage_gb', 'bigint', (c) => c.notNull())
          .addColumn('vcpus', 'bigint', (c) => c.notNull())
          .addColumn('memory_mb', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('token_block_usage_pk', ['tenant_id', 'block_id'])
          .execute();
      },
    },
    '0008_token_names': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        // An optional name and description, so a token list is readable by people.
        await db.schema.alterTable('tokens').addColumn('name', 'text').execute();
        await db.schema.alterTable('tokens').addColumn('description', 'text').execute();
      },
    },
    // Sessions (SPEC §5): one row per token block seen in use, written by each server's flusher
    // (src/control/sessions.ts) from what it aggregated in memory, never once per request.
    '0009_sessions': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('sessions')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('token_id', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('scopes', 'text', (c) => c.notNull())
          .addColumn('chain', 'text', (c) => c.notNull())
          .addColumn('first_seen', 'text', (c) => c.notNull())
          .addColumn('last_seen', 'text', (c) => c.notNull())
          .addColumn('last_address', 'text', (c) => c.notNull())
          .addColumn('request_count', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('sessions_pk', ['tenant_id', 'token_id'])
          .execute();
      },
    },
    '0010_token_issuer_chain': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        // The block ids of the chain that issued a token through the API (JSON array, root first), so
        // revoking any block of that chain revokes the token too. Null when a platform admin issued it.
        await db.schema.alterTable('tokens').addColumn('issuer_chain', 'text').execute();
      },
    },
    '0011_session_names': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        // A session shows its token's name; a delegated block's is known only from its requests.
        await db.schema.alterTable('sessions').addColumn('name', 'text').execute();
      },
    },
    // The fleet (SPEC §7, docs/design/fleet.md): enrolled nodes, the pool a VM is placed in, the
    // tenant switch for shared nodes, and the last console output of each VM.
    '0012_nodes': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('nodes')
          // The owning tenant, or SHARED_POOL ('*', never a tenant id) for a platform's shared node.
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('node_id', 'text', (c) => c.notNull())
          .addColumn('public_key', 'text', (c) => c.notNull().unique())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('cpus', 'integer', (c) => c.notNull())
          .addColumn('memory_mb_total', 'integer', (c) => c.notNull())
          .addColumn('memory_mb_available', 'integer', (c) => c.notNull())
          .addColumn('disk_gb_available', 'integer', (c) => c.notNull())
          .addColumn('kvm', 'integer', (c) => c.notNull())
          .addColumn('last_heartbeat_at', 'text', (c) => c.notNull())
          .addColumn('enrolled_at', 'text', (c) => c.notNull())
          .addColumn('enrolled_by', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('nodes_pk', ['tenant_id', 'node_id'])
          .execute();
        await db.schema.createIndex('nodes_by_state').on('nodes').columns(['state', 'last_heartbeat_at']).execute();
        // With node_id, names the node a VM is placed on (or pinned to): its tenant or SHARED_POOL.
        await db.schema.alterTable('vms').addColumn('node_pool', 'text').execute();
        await db.schema.createIndex('vms_by_node').on('vms').columns(['node_pool', 'node_id']).execute();
        await db.schema.createIndex('vms_by_state').on('vms').columns(['state', 'created_at']).execute();
        await db.schema
          .alterTable('tenants')
          .addColumn('shared_pool', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .createTable('vm_consoles')
          .addColumn('vm_id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          // base64 of at most the last 64 KiB of the VM's serial console.
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    // Usage kept, not summed (docs/design/quotas-and-rate-limits.md): the tenant's row carries what
    // its VM rows hold, changed in the same transaction as every VM insert and delete, so a quota
    // decision reads it with the tenant lock instead of summing every VM. Backfilled here from the
    // VM rows; the covering index that served the sum goes, so inserts no longer maintain it (dropping an
    // index changes no query's answer, so this stays additive).
    '0013_usage': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        for (const column of USAGE_COLUMNS) {
          await db.schema
            .alterTable('tenants')
            .addColumn(column, 'bigint', (c) => c.notNull().defaultTo(0))
            .execute();
        }
        await sql`UPDATE tenants SET
          usage_vms = (SELECT COUNT(*) FROM vms WHERE vms.tenant_id = tenants.tenant_id),
          usage_storage_gb = (SELECT COALESCE(SUM(disk_gb), 0) FROM vms WHERE vms.tenant_id = tenants.tenant_id),
          usage_vcpus = (SELECT COALESCE(SUM(vcpus), 0) FROM vms WHERE vms.tenant_id = tenants.tenant_id),
          usage_memory_mb = (SELECT COALESCE(SUM(memory_mb), 0) FROM vms WHERE vms.tenant_id = tenants.tenant_id)`.execute(db);
        await db.schema.dropIndex('vms_usage').execute();
      },
    },
    // The rate limit across replicas without a write per request (docs/design/quotas-and-rate-limits.md):
    // slots leased per tenant and second. rate_events stays for servers of the previous version.
    '0014_rate_slots': {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('rate_slots')
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('second', 'bigint', (c) => c.notNull())
          .addColumn('taken', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('rate_slots_pk', ['tenant_id', 'second'])
          .execute();
      },
    },
    // Each migration's kind, so that an older server can tell whether it may run on this database
    // (migrateSchema). Filled by buildMigrations as each migration runs.
    [KINDS_MIGRATION]: {
      kind: 'additive',
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('migration_kinds')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) => c.notNull())
          .execute();
      },
    },
  };
}

const USAGE_COLUMNS = ['usage_vms', 'usage_storage_gb', 'usage_vcpus', 'usage_memory_mb'] as const;

/**
 * WORM (SPEC §8): the store itself refuses to change or remove ledger rows (entries, and the tree
 * nodes derived from them). The PostgreSQL trigger function is created once, with the first table.
 */
async function createWormTriggers(db: Kysely<unknown>, dialect: Dialect, table: string, createFunction: boolean): Promise<void> {
  if (dialect === 'sqlite') {
    for (const op of ['UPDATE', 'DELETE']) {
      await sql
        .raw(
          `CREATE TRIGGER ${table}_no_${op.toLowerCase()} BEFORE ${op} ON ${table}
           BEGIN SELECT RAISE(ABORT, 'ledger entries are write-once'); END`,
        )
        .execute(db);
    }
    return;
  }
  if (createFunction) {
    await sql
      .raw(
        `CREATE FUNCTION ledger_entries_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'ledger entries are write-once'; END $$`,
      )
      .execute(db);
  }
  await sql.raw(`CREATE TRIGGER ${table}_worm BEFORE UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION ledger_entries_refuse_change()`).execute(db);
  await sql.raw(`CREATE TRIGGER ${table}_worm_truncate BEFORE TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_refuse_change()`).execute(db);
}
