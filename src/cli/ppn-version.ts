/** `ppn version`: this client's release and the server's, with a warning when the two are outside the version-skew policy. */
import type { Command } from 'commander';
import { VERSION, warnOfVersionSkew, type ServerVersion } from '../version.js';
import { ProblemError, type ApiClient } from './client.js';
import { printRecord } from './output.js';
import { serverCommand, type CallOptions } from './ppn-options.js';

export function registerVersion(program: Command): void {
  serverCommand(
    program.command('version').description("this client's release and the server's (GET /v1/version); warns when they are too far apart to work together"),
    ['ppn version', 'ppn version --remote prod --json'],
    async (client: ApiClient, options: CallOptions) => {
      // An unreachable or refusing server fails the command as any other; only a 404 means a release before the route.
      let answer: ServerVersion | null = null;
      try {
        answer = (await client.request<ServerVersion>('GET', '/v1/version')).body;
      } catch (error) {
        if (!(error instanceof ProblemError && error.problem.status === 404)) throw error;
      }
      await warnOfVersionSkew(
        'client',
        async () => answer,
        (warning) => process.stderr.write(`${warning}\n`),
      );
      printRecord(options, { client: VERSION, server: answer }, VERSION, [
        ['client', VERSION],
        ['server', answer?.version ?? 'before 0.2.0 (no /v1/version)'],
        ['api', answer?.api ?? 'v1'],
        ['supports ppn from', answer?.min_client ?? '-'],
        ['store schema', answer?.store_schema ?? '-'],
      ]);
    },
  );
}
