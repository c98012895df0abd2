/**
 * `ppn tenant list | show | create | set | suspend | resume | delete`: tenants over the API
 * (docs/api.md, Tenants). `show` prints the tenant's limits against its usage, like
 * `incus project info`; the API rate's usage comes from the answer's RateLimit header, which the
 * server sends to a tenant's own tokens only.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { CliError, EXIT_USAGE } from './command-line.js';
import { printList, printRecord, printTable, type Column } from './output.js';
import { serverCommand, type CallOptions } from './ppn-options.js';
import type { ApiClient } from './client.js';
import type { TenantRecord } from '../records.js';

type Tenant = TenantRecord;

const LIMITS = ['max_vms', 'storage_quota_gb', 'api_rate_limit_rpm', 'max_vcpus', 'max_memory_mb'] as const;
const SETTABLE = ['display_name', ...LIMITS, 'state', 'require_pop', 'shared_pool'] as const;

const COLUMNS: Column<Tenant>[] = [
  { heading: 'TENANT', value: (t) => t.tenant_id },
  { heading: 'NAME', value: (t) => t.display_name, shrink: true },
  { heading: 'STATE', value: (t) => t.state },
  { heading: 'VMS', value: (t) => `${t.usage?.vms ?? 0}/${t.max_vms}` },
  { heading: 'STORAGE', value: (t) => `${t.usage?.storage_gb ?? 0}/${t.storage_quota_gb} GB` },
  { heading: 'RATE', value: (t) => `${t.api_rate_limit_rpm}/min` },
];

const path = (id: string) => `/v1/tenants/${encodeURIComponent(id)}`;

function wholeNumber(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d{1,10}$/.test(value)) throw new InvalidArgumentError(`${name} wants a whole number`);
    return Number(value);
  };
}

/** `KEY=VALUE` of `ppn tenant set`, as the PATCH body takes it. */
export function parseSetting(text: string): [string, unknown] {
  const match = /^([a-z_]+)=(.*)$/s.exec(text);
  if (!match || !(SETTABLE as readonly string[]).includes(match[1]!)) throw new CliError(`KEY=VALUE wants KEY one of ${SETTABLE.join(', ')}; got "${text}"`, EXIT_USAGE);
  const key = match[1]!;
  const value = match[2]!;
  if (key === 'display_name') return [key, value];
  if (key === 'state') {
    const state = value.toLowerCase();
    if (state !== 'active' && state !== 'suspended') throw new CliError('state must be one of active, suspended', EXIT_USAGE);
    return [key, state];
  }
  if (key === 'require_pop' || key === 'shared_pool') {
    if (!/^(true|false)$/i.test(value)) throw new CliError(`${key} must be one of true, false`, EXIT_USAGE);
    return [key, value.toLowerCase() === 'true'];
  }
  const unbounded = key === 'max_vcpus' || key === 'max_memory_mb';
  if (unbounded && /^(unlimited|null|none)$/i.test(value)) return [key, null];
  if (!/^\d{1,10}$/.test(value)) throw new CliError(`${key} wants a whole number${unbounded ? ' or "unlimited"' : ''}; got "${value}"`, EXIT_USAGE);
  return [key, Number(value)];
}

function limit(value: number | null, unit = ''): string {
  return value === null ? 'unlimited' : `${value}${unit}`;
}

/** The RESOURCE | LIMIT | USAGE table of `tenant show`. */
function usageRows(tenant: Tenant, rateUsed: string): [string, string, string][] {
  const u = tenant.usage;
  return [
    ['vms', limit(tenant.max_vms), `${u?.vms ?? 0}`],
    ['storage', limit(tenant.storage_quota_gb, ' GB'), `${u?.storage_gb ?? 0} GB`],
    ['vcpus', limit(tenant.max_vcpus), `${u?.vcpus ?? 0}`],
    ['memory', limit(tenant.max_memory_mb, ' MB'), `${u?.memory_mb ?? 0} MB`],
    ['api rate', `${tenant.api_rate_limit_rpm}/min`, rateUsed],
  ];
}

/** Requests used in the current minute, from `RateLimit: "tenant";r=…` and `RateLimit-Policy: "tenant";q=…`. */
function rateUsage(headers: Headers): string {
  const q = /;q=(\d+)/.exec(headers.get('ratelimit-policy') ?? '')?.[1];
  const r = /;r=(\d+)/.exec(headers.get('ratelimit') ?? '')?.[1];
  return q !== undefined && r !== undefined ? `${Number(q) - Number(r)} in the last minute` : '-';
}

export function showTenant(options: CallOptions, tenant: Tenant, rateUsed = '-'): void {
  printRecord(
    options,
    tenant,
    tenant.tenant_id,
    [
      ['tenant', tenant.tenant_id],
      ['name', tenant.display_name],
      ['state', tenant.state],
      ['require_pop', String(tenant.require_pop)],
      ['shared_pool', String(tenant.shared_pool)],
      ['created', tenant.created_at],
    ],
    () => {
      process.stdout.write('\n');
      printTable(
        [
          { heading: 'RESOURCE', value: (r: [string, string, string]) => r[0] },
          { heading: 'LIMIT', value: (r) => r[1] },
          { heading: 'USAGE', value: (r) => r[2] },
        ],
        usageRows(tenant, rateUsed),
      );
    },
  );
}

interface CreateOptions extends CallOptions {
  displayName?: string;
  maxVms?: number;
  storageGb?: number;
  rateLimit?: number;
  maxVcpus?: number;
  maxMemoryMb?: number;
}

export function registerTenant(program: Command): void {
  const tenant = program.command('tenant').description('list, show, create, change and delete tenants');

  serverCommand(
    tenant.command('list').description('every live tenant with its usage (platform admin)'),
    ['ppn tenant list', 'ppn tenant list -q'],
    async (client: ApiClient, options: CallOptions) => {
      const tenants = await client.listAll<Tenant>('/v1/tenants?limit=1000');
      printList(options, tenants, COLUMNS, (t) => t.tenant_id);
    },
  );

  serverCommand(
    tenant.command('show').argument('<tenant>', 'the tenant id').description("a tenant's settings, and each limit against its usage"),
    ['ppn tenant show acme-corp', 'ppn tenant show acme-corp --json'],
    async (client: ApiClient, options: CallOptions, id: string) => {
      const answer = await client.request<Tenant>('GET', path(id));
      showTenant(options, answer.body, rateUsage(answer.headers));
    },
  );

  serverCommand(
    tenant
      .command('create')
      .argument('<tenant>', 'the new tenant id: lowercase letters, digits and "-", 2 to 63 characters')
      .description('register a tenant with its quotas (platform admin); unset limits take the server defaults')
      .option('--display-name <text>', 'a name for people (default: the id)')
      .option('--max-vms <n>', 'how many VMs at most', wholeNumber('--max-vms'))
      .option('--storage-gb <n>', 'disk in GB across its VMs', wholeNumber('--storage-gb'))
      .option('--rate-limit <n>', 'API requests per minute', wholeNumber('--rate-limit'))
      .option('--max-vcpus <n>', 'vCPUs across its VMs (default unlimited)', wholeNumber('--max-vcpus'))
      .option('--max-memory-mb <n>', 'memory in MB across its VMs (default unlimited)', wholeNumber('--max-memory-mb')),
    ['ppn tenant create acme-corp --display-name "Acme Corporation" --max-vms 10 --storage-gb 100'],
    async (client: ApiClient, options: CreateOptions, id: string) => {
      const body = {
        tenant_id: id,
        display_name: options.displayName ?? id,
        ...(options.maxVms !== undefined ? { max_vms: options.maxVms } : {}),
        ...(options.storageGb !== undefined ? { storage_quota_gb: options.storageGb } : {}),
        ...(options.rateLimit !== undefined ? { api_rate_limit_rpm: options.rateLimit } : {}),
        ...(options.maxVcpus !== undefined ? { max_vcpus: options.maxVcpus } : {}),
        ...(options.maxMemoryMb !== undefined ? { max_memory_mb: options.maxMemoryMb } : {}),
      };
      const created = await client.request<Tenant>('POST', '/v1/tenants', body);
      showTenant(options, created.body);
    },
  );

  serverCommand(
    tenant
      .command('set')
      .argument('<tenant>', 'the tenant id')
      .argument('<key=value...>', `any of ${SETTABLE.join(', ')}; max_vcpus and max_memory_mb take "unlimited"`)
      .description("change a tenant's name, limits, state, require_pop or shared_pool (platform admin)")
      .option('--force', 'lower a limit below what the tenant uses now (existing VMs stay)', false),
    ['ppn tenant set acme-corp max_vms=20 storage_quota_gb=200', 'ppn tenant set acme-corp require_pop=true', 'ppn tenant set acme-corp max_vcpus=unlimited'],
    async (client: ApiClient, options: CallOptions & { force: boolean }, id: string, settings: string[]) => {
      const body = Object.fromEntries(settings.map(parseSetting));
      if (options.force) body.force = true;
      showTenant(options, (await client.request<Tenant>('PATCH', path(id), body)).body);
    },
  );

  for (const [verb, state, about] of [
    ['suspend', 'suspended', 'suspend a tenant: its tokens may only read (platform admin)'],
    ['resume', 'active', 'make a suspended tenant active again (platform admin)'],
  ] as const) {
    serverCommand(
      tenant.command(verb).argument('<tenant>', 'the tenant id').description(about),
      [`ppn tenant ${verb} acme-corp`],
      async (client: ApiClient, options: CallOptions, id: string) => {
        showTenant(options, (await client.request<Tenant>('PATCH', path(id), { state })).body);
      },
    );
  }

  serverCommand(
    tenant
      .command('delete')
      .argument('<tenant>', 'the tenant id')
      .description('delete a tenant (platform admin); refused while it has VMs or nodes, unless --cascade')
      .option('--cascade', 'also delete its VMs and nodes and revoke its tokens, in one transaction', false),
    ['ppn tenant delete acme-corp', 'ppn tenant delete acme-corp --cascade'],
    async (client: ApiClient, options: CallOptions & { cascade: boolean }, id: string) => {
      await client.request('DELETE', `${path(id)}${options.cascade ? '?cascade=true' : ''}`);
      if (options.json) process.stdout.write(`${JSON.stringify({ tenant_id: id, deleted: true })}\n`);
      else if (options.quiet) process.stdout.write(`${id}\n`);
      else process.stdout.write(`deleted tenant ${id}\n`);
    },
  );
}
