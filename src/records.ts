/**
 * The API's records as its clients read them (docs/api.md): the ppn client (src/cli/ppn-*.ts) and
 * the web console (console/src/) both type their answers with these. Types only and no imports, so
 * the console's bundle and the ppn client take nothing of the server with them.
 */

export interface Usage {
  vms: number;
  storage_gb: number;
  vcpus: number;
  memory_mb: number;
}

/** A tenant as GET /v1/tenants and GET /v1/tenants/{id} answer it; `usage` where the answer has it. */
export interface TenantRecord {
  tenant_id: string;
  display_name: string;
  state: string;
  max_vms: number;
  storage_quota_gb: number;
  api_rate_limit_rpm: number;
  max_vcpus: number | null;
  max_memory_mb: number | null;
  require_pop: boolean;
  shared_pool: boolean;
  created_at: string;
  usage?: Usage;
}

/** A VM as GET /v1/vms and GET /v1/vms/{id} answer it. */
export interface VmRecord {
  vm_id: string;
  tenant_id: string;
  name: string;
  vcpus: number;
  memory_mb: number;
  disk_gb: number;
  image: string | null;
  state: string;
  desired_state: string;
  node_id: string | null;
  reason: string | null;
  created_at: string;
  updated_at: string;
  /** The token that created it; null for a VM no token created. */
  created_by: string | null;
}

/** A fleet node as GET /v1/nodes and GET /v1/nodes/{id} answer it; `vms` on the single node's answer. */
export interface NodeRecord {
  node_id: string;
  tenant_id: string | null;
  shared: boolean;
  state: string;
  capacity: { cpus: number; memory_mb_total: number; memory_mb_available: number; disk_gb_available: number; kvm: boolean };
  allocated: { vms: number; vcpus: number; memory_mb: number; disk_gb: number };
  last_heartbeat_at: string;
  enrolled_at: string;
  vms?: { vm_id: string; tenant_id: string; name: string; state: string; desired_state: string }[];
}
