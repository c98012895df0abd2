/**
 * A daily tool's manners (issue 12): `--version` on every bin, `--help` with examples on every `ppn`
 * command, and shell completion that completes subcommands, options and enumerated values. The
 * built CLIs as child processes; the bash completion is run by bash itself.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from '../support/server-process.js';

const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const ppn = (...args: string[]) => runCli(CLI.ppn, args);

/** Every command path the completion script knows, e.g. "vm create". */
function commandPaths(): string[] {
  const script = ppn('completion', 'bash').stdout;
  return [...script.matchAll(/^ {4}"([a-z ]*)"\) opts=/gm)].map((m) => m[1]!);
}

/** What bash's completion offers after typing `line` (the cursor at its end). */
function complete(line: string): string[] {
  const words = line.split(' ');
  const script = `${ppn('completion', 'bash').stdout}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _ppn; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['--norc', '-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  expect(result.stderr).toBe('');
  return result.stdout.split('\n').filter((w) => w !== '');
}

describe('ppn and the other bins as a daily tool', () => {
  it('every bin answers --version with the package version', () => {
    for (const bin of [CLI.ppn, CLI.server, CLI.fs, CLI.host]) {
      const result = runCli(bin, ['--version']);
      expect(result.status, bin).toBe(0);
      expect(result.stdout).toBe(`${version}\n`);
    }
  });

  it('every ppn command that does something has --help with examples', () => {
    const paths = commandPaths();
    expect(paths).toEqual(expect.arrayContaining(['', 'remote add', 'tenant show', 'vm create', 'token issue', 'session end', 'node list', 'completion']));
    const leaves = paths.filter((path) => path !== '' && !paths.some((other) => other.startsWith(`${path} `)));
    expect(leaves.length).toBeGreaterThan(25);
    for (const path of ['', ...leaves]) {
      const result = ppn(...(path === '' ? [] : path.split(' ')), '--help');
      expect(result.status, path).toBe(0);
      expect(result.stdout, path).toMatch(/\nExamples:\n {2}\$ \S/);
    }
  });

  it('bash completion completes subcommands, options and enumerated values', () => {
    expect(complete('ppn v')).toEqual(['version', 'vm']);
    expect(complete('ppn vm cr')).toEqual(['create']);
    expect(complete('ppn vm create web-1 --wa')).toEqual(['--wait']);
    expect(complete('ppn token issue --scope tenant:')).toEqual(['tenant:input', 'tenant:user', 'tenant:read']);
    expect(complete('ppn completion ')).toEqual(['bash', 'zsh']);
  });

  it('zsh completion loads the same through bashcompinit', () => {
    const script = ppn('completion', 'zsh').stdout;
    expect(script).toMatch(/^# ppn completion for zsh; load it with: source <\(ppn completion zsh\)\nautoload -U \+X bashcompinit && bashcompinit\n/);
    expect(script).toContain('complete -o default -F _ppn ppn');
  });
});
