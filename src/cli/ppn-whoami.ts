/** `ppn whoami`: who the current remote's token is, and each block's limits against what was created under it. */
import type { Command } from 'commander';
import type { ApiClient } from './client.js';
import { printRecord, printTable } from './output.js';
import { serverCommand, type CallOptions } from './ppn-options.js';

interface Block {
  token_id: string;
  name: string | null;
  scope: string[];
  expires_at: string;
  limits: Record<string, number> | null;
  usage: { vms: number; storage_gb: number; vcpus: number; memory_mb: number } | null;
}

interface Whoami {
  tenant_id: string | null;
  token_id: string;
  name: string | null;
  subject: string;
  scope: string[];
  expires_at: string;
  chain: Block[];
}

export function registerWhoami(program: Command): void {
  serverCommand(
    program.command('whoami').description("who the token is: tenant, id, name, holder, scopes, expiry and its chain's limits"),
    ['ppn whoami', 'ppn whoami --remote prod --json'],
    async (client: ApiClient, options: CallOptions) => {
      const me = (await client.request<Whoami>('GET', '/v1/whoami')).body;
      printRecord(
        options,
        me,
        me.token_id,
        [
          ['server', client.connection.url],
          ['tenant', me.tenant_id ?? '(none: platform)'],
          ['token', me.token_id],
          ['name', me.name ?? '-'],
          ['holder', me.subject],
          ['scopes', me.scope.join(', ')],
          ['expires', me.expires_at],
        ],
        () => {
          if (me.chain.length < 2 && !me.chain.some((b) => b.limits)) return;
          process.stdout.write('\n');
          printTable(
            [
              { heading: 'BLOCK', value: (b: Block) => b.token_id },
              { heading: 'NAME', value: (b) => b.name ?? '', shrink: true },
              { heading: 'SCOPE', value: (b) => b.scope.join(','), shrink: true },
              {
                heading: 'LIMITS',
                value: (b) =>
                  b.limits
                    ? Object.entries(b.limits)
                        .map(([k, v]) => `${k}=${v}`)
                        .join(',')
                    : '-',
                shrink: true,
              },
              { heading: 'VMS', value: (b) => String(b.usage?.vms ?? '-') },
            ],
            me.chain,
          );
        },
      );
    },
  );
}
