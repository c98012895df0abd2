/** `ppn session list | end`: the tokens in use in a tenant, and ending one by revoking it (docs/api.md, Sessions). */
import type { Command } from 'commander';
import type { ApiClient } from './client.js';
import { CliError, EXIT_USAGE } from './command-line.js';
import { printJson, printList, type Column } from './output.js';
import { serverCommand, withTenant, type CallOptions } from './ppn-options.js';

interface Session {
  token_id: string;
  tenant_id: string;
  name: string | null;
  scope: string[];
  last_seen: string;
  last_address: string;
  request_count: number;
  revoked: boolean;
  chain: string[];
}

type SessionOptions = CallOptions & { tenant?: string };

const COLUMNS: Column<Session>[] = [
  { heading: 'TOKEN', value: (s) => s.token_id },
  { heading: 'NAME', value: (s) => s.name ?? '', shrink: true },
  { heading: 'SCOPE', value: (s) => s.scope.join(','), shrink: true },
  { heading: 'REQUESTS', value: (s) => String(s.request_count) },
  { heading: 'LAST SEEN', value: (s) => s.last_seen.slice(0, 19).replace('T', ' ') },
  { heading: 'STATUS', value: (s) => (s.revoked ? 'ended' : 'live') },
];

export function registerSession(program: Command): void {
  const session = program.command('session').description("a tenant's tokens in use, and ending one (a tenant admin)");
  const tenantOption = ['--tenant <tenant>', 'the tenant (a platform admin must name it)'] as const;

  serverCommand(
    session
      .command('list')
      .description('every token in use, with its request count')
      .option(...tenantOption),
    ['ppn session list'],
    async (client: ApiClient, options: SessionOptions) => {
      const sessions = await client.listAll<Session>(withTenant('/v1/sessions?limit=1000', options.tenant));
      printList(options, sessions, COLUMNS, (s) => s.token_id);
    },
  );

  serverCommand(
    session
      .command('end')
      .argument('<session>', "the session's token id, or its name")
      .description("end a session: its token's last block is revoked")
      .option(...tenantOption),
    ['ppn session end tok-01m8ft8btc7tvq8ag3w1aceh4q', 'ppn session end "build box"'],
    async (client: ApiClient, options: SessionOptions, idOrName: string) => {
      let id = idOrName;
      if (!/^tok-[0-9a-z]{26}$/.test(idOrName)) {
        const named = (await client.listAll<Session>(withTenant('/v1/sessions?limit=1000', options.tenant))).filter((s) => s.name === idOrName && !s.revoked);
        if (named.length !== 1)
          throw new CliError(
            `${named.length === 0 ? 'no live session' : `${named.length} live sessions`} named "${idOrName}"; "ppn session list" shows them`,
            named.length === 0 ? 1 : EXIT_USAGE,
          );
        id = named[0]!.token_id;
      }
      const ended = (await client.request<Session>('DELETE', withTenant(`/v1/sessions/${id}`, options.tenant))).body;
      if (options.json) printJson(ended);
      else if (options.quiet) process.stdout.write(`${ended.token_id}\n`);
      else process.stdout.write(`ended ${ended.token_id}${ended.name ? ` (${ended.name})` : ''}: its block is revoked\n`);
    },
  );
}
