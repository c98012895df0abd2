/**
 * The README's walk-through, run as written: the shell block between the walkthrough markers, with
 * bash, curl and jq, against a real server. Only the base URL is changed (the server listens on a
 * free port), and `npx` runs the built commands.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, startServer, type ServerProcess } from '../support/server-process.js';

function walkthroughScript(): string {
  const readme = readFileSync('README.md', 'utf8');
  const block = /<!-- walkthrough:start -->\n```sh\n([\s\S]*?)```\n<!-- walkthrough:end -->/.exec(readme);
  if (!block) throw new Error('README has no walkthrough block');
  return block[1]!;
}

/** A bin directory where `npx NAME` runs this checkout's built NAME. */
function shimBin(): string {
  const bin = mkdtempSync(join(tmpdir(), 'ppn-bin-'));
  const shims: Record<string, string> = {
    npx: 'exec "$@"',
    ppn: `exec "${process.execPath}" "${CLI.ppn}" "$@"`,
    'service-fs': `exec "${process.execPath}" "${CLI.fs}" "$@"`,
  };
  for (const [name, body] of Object.entries(shims)) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
}

describe('README walk-through', () => {
  let server: ServerProcess;
  let result: SpawnSyncReturns<string>;
  beforeAll(async () => {
    server = await startServer();
    const script = walkthroughScript();
    expect(script).toContain('PPN=http://127.0.0.1:9221\n');
    result = spawnSync('bash', ['-euo', 'pipefail', '-c', script.replace('PPN=http://127.0.0.1:9221\n', `PPN=${server.url}\n`)], {
      cwd: dirname(server.dataDir),
      encoding: 'utf8',
      // The remote read remembers the checkpoint it saw under $XDG_CONFIG_HOME: keep it out of $HOME.
      env: { ...process.env, PATH: `${shimBin()}:${process.env.PATH}`, XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'ppn-config-')) },
    });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('runs as written and shows each step', () => {
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const out = result.stdout;
    expect(out).toContain('"tenant_id": "acme-corp"');
    expect(out).toMatch(/"items": \[\]/);
    for (let i = 1; i <= 10; i++) expect(out).toContain(`web-${i}: 201`);
    expect(out).toContain('"type": "https://iana.org/assignments/http-problem-types#quota-exceeded"');
    expect(out).toContain('"violated-policies": [\n    "max_vms"\n  ]');
    expect(out).toMatch(/^#\d+ \S+ TENANT_CREATED tenant=acme-corp actor=tok-\S+ /m);
    expect(out).toMatch(/^ledger verified: \d+ entries, \d+ checkpoints, latest at size \d+; extends the checkpoint at size \d+ in ledger\.state$/m);
    expect(out).toMatch(/^#\d+ \S+ VM_CREATE_DENIED tenant=acme-corp actor=tok-\S+ /m);
  });

  it("shows step 4's answer with the ledger_index the walk-through produces", () => {
    const shown = /Step 4's last answer looks like this[\s\S]*?"ledger_index": (\d+)/.exec(readFileSync('README.md', 'utf8'));
    const produced = /"ledger_index": (\d+)/.exec(result.stdout);
    expect(shown).not.toBeNull();
    expect(produced).not.toBeNull();
    expect(Number(shown![1])).toBe(Number(produced![1]));
  });
});
