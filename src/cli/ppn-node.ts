/** `ppn node list | show | remove`: the tenant's fleet nodes (docs/api.md, Fleet nodes); nodes enroll themselves with service-vm-host. */
import type { Command } from 'commander';
import type { ApiClient } from './client.js';
import type { NodeRecord } from '../records.js';
import { printJson, printList, printRecord, printTable, type Column } from './output.js';
import { serverCommand, withTenant, type CallOptions } from './ppn-options.js';

type FleetNode = NodeRecord;

type NodeOptions = CallOptions & { tenant?: string };

const COLUMNS: Column<FleetNode>[] = [
  { heading: 'NODE', value: (n) => n.node_id, shrink: true },
  { heading: 'POOL', value: (n) => (n.shared ? 'shared' : (n.tenant_id ?? '-')), shrink: true },
  { heading: 'STATE', value: (n) => n.state },
  { heading: 'VMS', value: (n) => String(n.allocated.vms) },
  { heading: 'VCPUS', value: (n) => `${n.allocated.vcpus}/${n.capacity.cpus}` },
  { heading: 'MEMORY', value: (n) => `${n.allocated.memory_mb}/${n.capacity.memory_mb_total} MB` },
  { heading: 'KVM', value: (n) => (n.capacity.kvm ? 'yes' : 'no') },
];

export function registerNode(program: Command): void {
  const node = program.command('node').description('fleet nodes: list, show, remove (nodes enroll with service-vm-host)');
  const tenantOption = ['--tenant <tenant>', "a platform admin: the tenant's pool (default: every pool for list, the shared pool otherwise)"] as const;

  serverCommand(
    node
      .command('list')
      .description("the tenant's nodes")
      .option(...tenantOption),
    ['ppn node list'],
    async (client: ApiClient, options: NodeOptions) => {
      const nodes = await client.listAll<FleetNode>(withTenant('/v1/nodes?limit=1000', options.tenant));
      printList(options, nodes, COLUMNS, (n) => n.node_id);
    },
  );

  serverCommand(
    node
      .command('show')
      .argument('<node>', 'the node id')
      .description('a node, its capacity and the VMs placed on it')
      .option(...tenantOption),
    ['ppn node show compute-01'],
    async (client: ApiClient, options: NodeOptions, id: string) => {
      const found = (await client.request<FleetNode>('GET', withTenant(`/v1/nodes/${encodeURIComponent(id)}`, options.tenant))).body;
      printRecord(
        options,
        found,
        found.node_id,
        [
          ['node', found.node_id],
          ['pool', found.shared ? 'shared' : (found.tenant_id ?? '-')],
          ['state', found.state],
          ['cpus', `${found.allocated.vcpus} of ${found.capacity.cpus} allocated${found.capacity.kvm ? ', kvm' : ', no kvm (TCG)'}`],
          ['memory', `${found.allocated.memory_mb} of ${found.capacity.memory_mb_total} MB allocated`],
          ['disk', `${found.allocated.disk_gb} GB allocated, ${found.capacity.disk_gb_available} GB free`],
          ['heartbeat', found.last_heartbeat_at ?? '-'],
          ['enrolled', found.enrolled_at],
        ],
        () => {
          if (!found.vms || found.vms.length === 0) return;
          process.stdout.write('\n');
          printTable(
            [
              { heading: 'VM', value: (v: NonNullable<FleetNode['vms']>[number]) => v.name, shrink: true },
              { heading: 'STATE', value: (v) => v.state },
              { heading: 'DESIRED', value: (v) => v.desired_state },
              { heading: 'ID', value: (v) => v.vm_id },
            ],
            found.vms,
          );
        },
      );
    },
  );

  serverCommand(
    node
      .command('remove')
      .argument('<node>', 'the node id')
      .description('remove a node (a tenant admin); its VMs become failed')
      .option(...tenantOption),
    ['ppn node remove compute-01'],
    async (client: ApiClient, options: NodeOptions, id: string) => {
      await client.request('DELETE', withTenant(`/v1/nodes/${encodeURIComponent(id)}`, options.tenant));
      if (options.json) printJson({ node_id: id, removed: true });
      else if (options.quiet) process.stdout.write(`${id}\n`);
      else process.stdout.write(`removed node ${id}\n`);
    },
  );
}
