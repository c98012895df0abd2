/** The tables, as Kysely sees them. Timestamps are RFC 3339 UTC strings in every store. */
import type { Generated, Kysely } from 'kysely';
import type { KeyState } from '../tokens/keyring.js';

export type TenantState = 'active' | 'suspended' | 'deleted';
export type VmState = 'pending' | 'scheduled' | 'starting' | 'running' | 'stopped' | 'failed' | 'deleting' | 'unknown';
export type DesiredState = 'running' | 'stopped' | 'deleted';

export interface TenantsTable {
  tenant_id: string;
  display_name: string;
  max_vms: number;
  storage_quota_gb: number;
  api_rate_limit_rpm: number;
  max_vcpus: number | null;
  max_memory_mb: number | null;
  /** A deleted tenant stays as a tombstone so that its id is never reused. */
  state: TenantState;
  created_at: string;
  updated_at: string;
  /**
   * Bumped in the same transaction as every change to the tenant's VM rows, so a cached VM list is
   * known fresh by comparing one number read with the tenant.
   */
  vm_generation: Generated<number>;
  /**
   * What the tenant's VM rows hold (SPEC §6 usage): their count and the sums of their disk, vCPUs and
   * memory. Changed in the same transaction as every VM insert and delete (src/store/vms.ts), and
   * checked against the rows by the leader's usage audit (src/control/usage-audit.ts).
   */
  usage_vms: Generated<number>;
  usage_storage_gb: Generated<number>;
  usage_vcpus: Generated<number>;
  usage_memory_mb: Generated<number>;
  /** 1: every request under the tenant's tokens must carry its holder's signature (SPEC §5), pop or not. */
  require_pop: number;
  /** 1: the scheduler may place the tenant's VMs on the platform's shared nodes (SPEC §7). */
  shared_pool: Generated<number>;
}

export interface TokensTable {
  token_id: string;
  tenant_id: string | null;
  subject_pubkey: string;
  /** JSON array of scopes. */
  scopes: string;
  /** JSON object of limits, or null. */
  limits: string | null;
  pop: number;
  issued_at: string;
  expires_at: string;
  issued_by: string | null;
  revoked_at: string | null;
  /** JSON array of the limited blocks ({jti, lim}) of the issuer's chain and lineage, or null. */
  quota_lineage: string | null;
  /**
   * JSON array of the block ids of the issuing token's chain, root first (the last is issued_by);
   * null when a platform admin issued it, or it was issued before the column existed.
   */
  issuer_chain: string | null;
  /** Optional, for people reading token lists: 1–64 and up to 256 characters, no control characters. */
  name: string | null;
  description: string | null;
}

export interface VmsTable {
  vm_id: string;
  tenant_id: string;
  name: string;
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  image: string | null;
  state: VmState;
  desired_state: DesiredState;
  node_id: string | null;
  reason: string | null;
  created_at: string;
  updated_at: string;
  created_by: string | null;
  /** JSON array of the token block ids the VM was created under, root first; null when none. */
  token_chain: string | null;
  /** With node_id, the node's pool: the VM's tenant, or SHARED_POOL for a shared node; null when no node. */
  node_pool: string | null;
}

export type NodeState = 'ready' | 'unreachable';

/** An enrolled fleet node (SPEC §7), keyed by its pool (tenant id or SHARED_POOL) and node id. */
export interface NodesTable {
  tenant_id: string;
  node_id: string;
  /** The node key (base64url): every request for this node must be signed by it. */
  public_key: string;
  state: NodeState;
  cpus: number;
  memory_mb_total: number;
  memory_mb_available: number;
  disk_gb_available: number;
  /** 1 when /dev/kvm is usable on the node. */
  kvm: number;
  /** Moved at most every storedHeartbeatMs(interval) (src/control/nodes.ts), by the heartbeat flush unless the row is written anyway. */
  last_heartbeat_at: string;
  enrolled_at: string;
  /** The token id that enrolled the node. */
  enrolled_by: string;
}

/** The last ≤ 64 KiB of a VM's serial console, as its node last uploaded it. */
export interface VmConsolesTable {
  vm_id: string;
  tenant_id: string;
  /** base64 */
  data: string;
  updated_at: string;
}

/**
 * What the VMs created under one token block hold now (SPEC §5 sub-quotas): kept in the same
 * transaction as every VM insert and delete, for every block of the VM's chain.
 */
export interface TokenBlockUsageTable {
  tenant_id: string;
  block_id: string;
  vms: number;
  storage_gb: number;
  vcpus: number;
  memory_mb: number;
}

export interface LedgerEntriesTable {
  idx: number;
  ts: string;
  event_type: string;
  tenant_id: string | null;
  /** subject_ids and actor token copied out of the entry so filters can use an index. */
  vm_id: string | null;
  node_id: string | null;
  token_id: string | null;
  actor_token_id: string | null;
  /** The canonical entry bytes (one JSON line); the only column the Merkle tree hashes. */
  entry: string;
}

/** One row per admitted request in the last minute: written by servers before rate_slots, only swept now. */
export interface RateEventsTable {
  tenant_id: string;
  at_ms: number;
}

/** Rate-limit slots leased to replicas, per tenant and second of the window (src/ratelimit/leases.ts). */
export interface RateSlotsTable {
  tenant_id: string;
  second: number;
  taken: number;
}

/** The ledger's Merkle tree: one row per perfect subtree (level, index), its hash in hex. */
export interface LedgerNodesTable {
  level: number;
  idx: number;
  hash: string;
}

/** Every signed checkpoint: the tree size it commits to and the signed note. */
export interface LedgerCheckpointsTable {
  size: number;
  note: string;
  created_at: string;
}

/**
 * The platform token-signing keys, shared by every replica of the store. The private key is sealed
 * under the data directory's key-encryption key (src/tokens/seal.ts); the public key is in the clear.
 */
export interface PlatformKeysTable {
  kid: string;
  /** base64url of the 32 raw bytes. */
  public_key: string;
  sealed_private_key: string;
  state: KeyState;
  created_at: string;
  retired_at: string | null;
}

/**
 * Request-signature nonces accepted in the last minutes, shared by replicas (PostgreSQL only; SQLite
 * keeps them in memory). See src/store/request-nonces.ts.
 */
export interface RequestNoncesTable {
  keyid: string;
  nonce: string;
  expires_at_ms: number;
}

/**
 * A token block seen in use (SPEC §5 sessions), by tenant and the block's id (the last block of the
 * chain: a root token's jti, or a delegated block's derived id). Times are RFC 3339 UTC.
 */
export interface SessionsTable {
  tenant_id: string;
  token_id: string;
  /** The final block's name: an issued token's from its record, a delegated block's from its claims. */
  name: string | null;
  subject: string;
  /** JSON array of the block's scopes. */
  scopes: string;
  /** JSON array of every block id of the chain, root first: revoking any of them ends the session. */
  chain: string;
  first_seen: string;
  last_seen: string;
  last_address: string;
  request_count: number;
}

export interface Database {
  tenants: TenantsTable;
  tokens: TokensTable;
  vms: VmsTable;
  ledger_entries: LedgerEntriesTable;
  rate_events: RateEventsTable;
  rate_slots: RateSlotsTable;
  ledger_nodes: LedgerNodesTable;
  ledger_checkpoints: LedgerCheckpointsTable;
  platform_keys: PlatformKeysTable;
  request_nonces: RequestNoncesTable;
  token_block_usage: TokenBlockUsageTable;
  sessions: SessionsTable;
  nodes: NodesTable;
  vm_consoles: VmConsolesTable;
}

/** A connection or a transaction: query modules accept either. */
export type Db = Kysely<Database>;
