/**
 * `ppn` in a real terminal (issue 12): the built CLI run by tmux in an 80-column pane against a real
 * server process. Tables are fitted to the terminal (no line wraps), headings are bold only without
 * NO_COLOR, and `vm create --wait` shows its progress in place until it gives up.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, runCli, startServer, within, type ServerProcess } from '../support/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'ppn-terminal-'));
const config = mkdtempSync(join(tmpdir(), 'ppn-config-'));
const env = { XDG_CONFIG_HOME: config, PPN_SERVER: '', PPN_TOKEN: '', PPN_KEY: '', NO_COLOR: '' };
const socket = `ppn-test-${process.pid}`;

function tmux(...args: string[]): string {
  const result = spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** Runs `ppn ARGS` in a new 80x40 window; the pane stays after it ends, marked by a line "[done EXIT]". */
function runInTerminal(name: string, args: string[], extraEnv = ''): void {
  const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  tmux('new-session', '-d', '-s', name, '-x', '80', '-y', '40', `${extraEnv} "${process.execPath}" "${CLI.ppn}" ${quoted}; echo "[done $?]"; sleep 600`);
}

/** The pane's text with wrapped lines joined (-J), so a line longer than the terminal shows as such; -e keeps escapes. */
const screen = (name: string, escapes = false) => tmux('capture-pane', '-p', '-J', ...(escapes ? ['-e'] : []), '-t', name);

async function finished(name: string): Promise<string> {
  let text = '';
  expect(await within(30_000, async () => /\[done \d+\]/.test((text = screen(name))), 100), text).not.toBeNull();
  return text;
}

describe('ppn in an 80-column terminal', () => {
  let server: ServerProcess;
  const longName = 'a-very-long-vm-name-that-a-team-chose-to-describe-its-purpose';

  beforeAll(async () => {
    server = await startServer();
    writeFileSync(join(dir, 'admin.token'), `${server.adminToken}\n`);
    const ppn = (...args: string[]) => expect(runCli(CLI.ppn, args, env).status, args.join(' ')).toBe(0);
    ppn('remote', 'add', 'local', server.url, '--token-file', join(dir, 'admin.token'));
    ppn('tenant', 'create', 'acme-corp', '--display-name', `Acme Corporation, ${'the division that builds rockets and anvils '.repeat(3)}`);
    for (const name of ['web-1', longName]) ppn('vm', 'create', name, '--tenant', 'acme-corp');
  }, 60_000);
  afterAll(async () => {
    spawnSync('tmux', ['-L', socket, 'kill-server']);
    await server?.stop();
  });

  it('vm list and tenant list fit 80 columns: long cells are cut with "…", ids and headings are whole', async () => {
    runInTerminal('vms', ['vm', 'list']);
    const vms = (await finished('vms')).split('\n').filter((line) => line.trim() !== '');
    for (const line of vms) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(vms[0]).toMatch(/^NAME +STATE +VCPUS +MEMORY +DISK +NODE +REASON$/);
    expect(vms.find((line) => line.startsWith('a-very-long'))).toMatch(/^a-very-long\S*… +pending +1 +1024 MB +10 GB +- +(no ready|waiting for)/);
    expect(vms.find((line) => line.startsWith('web-1 '))).toBeDefined();

    runInTerminal('tenants', ['tenant', 'list']);
    const tenants = (await finished('tenants')).split('\n').filter((line) => line.trim() !== '');
    for (const line of tenants) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(tenants[1]).toMatch(/^acme-corp +Acme Corporation, the division\S* .*… +active +2\/10 +20\/100 GB +600\/min$/);
  });

  it('headings are bold in a terminal, and plain with NO_COLOR', async () => {
    runInTerminal('bold', ['tenant', 'list']);
    await finished('bold');
    expect(screen('bold', true)).toContain('\u001b[1mTENANT');
    runInTerminal('plain', ['tenant', 'list'], 'NO_COLOR=1');
    await finished('plain');
    expect(screen('plain', true)).not.toContain('\u001b[1m');
  });

  it('vm create --wait shows its progress on one line, counting, then says why it gave up', async () => {
    runInTerminal('wait', ['vm', 'create', 'slow-1', '--tenant', 'acme-corp', '--wait', '--timeout', '4s']);
    const seen: string[] = [];
    expect(
      await within(
        30_000,
        async () => {
          const text = screen('wait');
          const line = /^waiting for slow-1 to be running \((\d)s\): pending: no node can run it yet/m.exec(text);
          if (line) seen.push(line[1]!);
          return new Set(seen).size >= 2;
        },
        100,
      ),
    ).not.toBeNull();
    const text = await finished('wait');
    // One progress line rewritten in place, then the refusal.
    expect(text.match(/waiting for slow-1/g)).toHaveLength(1);
    expect(text).toContain('error: gave up after 4s: slow-1 is still pending: no node can run it yet (no ready fleet node in this tenant); --timeout waits longer');
    expect(text).toContain('[done 1]');
  });
});
