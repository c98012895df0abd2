/**
 * The built `ppn` run as a user runs it, with its remotes in a configuration directory of the test's
 * own and none of the PPN_* variables of the environment the tests run in.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { CLI, runCli } from './server-process.js';

export function ppnUser(extraEnv: Record<string, string> = {}) {
  const config = mkdtempSync(join(tmpdir(), 'ppn-config-'));
  const env = { XDG_CONFIG_HOME: config, PPN_SERVER: '', PPN_TOKEN: '', PPN_KEY: '', NO_COLOR: '1', ...extraEnv };
  const ppn = (...args: string[]) => runCli(CLI.ppn, args, env);
  /** Ran, exited 0 and wrote nothing to stderr: its stdout. */
  const ok = (...args: string[]): string => {
    const result = ppn(...args);
    expect(result.stderr, args.join(' ')).toBe('');
    expect(result.status, args.join(' ')).toBe(0);
    return result.stdout;
  };
  /** The command with --json, its stdout parsed. */
  const json = (...args: string[]) => JSON.parse(ok(...args, '--json'));
  return { config, env, ppn, ok, json };
}
