/**
 * What every `ppn` command that calls the server takes: `--json` and `-q/--quiet` (and the program's
 * `--remote NAME`), and an example or two under its `--help`.
 */
import type { Command } from 'commander';
import { ApiClient } from './client.js';
import { runCli } from './command-line.js';
import type { OutputOptions } from './output.js';
import { resolveConnection } from './remotes.js';

export interface CallOptions extends OutputOptions {
  remote?: string;
}

/** Adds the shared options and the examples, and runs `action` with a client for the chosen remote. */
export function serverCommand<A extends unknown[], O extends CallOptions>(
  command: Command,
  examples: string[],
  action: (client: ApiClient, options: O, ...args: A) => Promise<void>,
): Command {
  return command
    .option('--json', "print the API's JSON", false)
    .option('-q, --quiet', 'print only ids, one a line', false)
    .addHelpText('after', helpExamples(examples))
    .action((...received: unknown[]) => {
      // Commander passes the arguments, then the options, then the command.
      const args = received.slice(0, -2) as A;
      // --remote is the program's, given before or after the subcommand.
      const options = (received[received.length - 1] as Command).optsWithGlobals<O>();
      return runCli(async () => action(new ApiClient(resolveConnection(options)), options, ...args));
    });
}

export function helpExamples(examples: string[]): string {
  return examples.length === 0 ? '' : `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`;
}

/** `path` with `tenant_id=` added to its query when a --tenant is given. */
export function withTenant(path: string, tenant: string | undefined): string {
  return tenant === undefined ? path : `${path}${path.includes('?') ? '&' : '?'}tenant_id=${encodeURIComponent(tenant)}`;
}
