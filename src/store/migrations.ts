/**
 * The schema, as ordered migrations that run unchanged on every store. Dialect-specific statements
 * (the WORM triggers) are chosen by the `dialect` argument, never by sniffing the connection.
 */
import { sql, type Kysely, type Migration } from 'kysely';
import type { Dialect } from './dialect.js';

export function buildMigrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_initial': {
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
      async up(db: Kysely<unknown>) {
        // An optional name and description, so a token list is readable by people.
        await db.schema.alterTable('tokens').addColumn('name', 'text').execute();
        await db.schema.alterTable('tokens').addColumn('description', 'text').execute();
      },
    },
    // Sessions (SPEC §5): one row per token block seen in use, written by each server's flusher
    // (src/control/sessions.ts) from what it aggregated in memory, never once per request.
    '0009_sessions': {
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
      async up(db: Kysely<unknown>) {
        // The block ids of the chain that issued a token through the API (JSON array, root first), so
        // revoking any block of that chain revokes the token too. Null when a platform admin issued it.
        await db.schema.alterTable('tokens').addColumn('issuer_chain', 'text').execute();
      },
    },
    '0011_session_names': {
      async up(db: Kysely<unknown>) {
        // A session shows its token's name; a delegated block's is known only from its requests.
        await db.schema.alterTable('sessions').addColumn('name', 'text').execute();
      },
    },
    // The fleet (SPEC §7, docs/design/fleet.md): enrolled nodes, the pool a VM is placed in, the
    // tenant switch for shared nodes, and the last console output of each VM.
    '0012_nodes': {
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
    // VM rows; the covering index that served the sum goes, so inserts no longer maintain it.
    '0013_usage': {
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
