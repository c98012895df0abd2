/**
 * The README's shell blocks, run as written: the walk-through, the same with `ppn`, then "Hand out tokens to a team",
 * which goes on from the walk-through's state, then "Add a fleet node" (a real agent and QEMU beside
 * the server), each the block between its markers, with bash, curl and jq, against one real server.
 * Only the base URL is changed (the server listens on a free port), and `npx` runs the built commands.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qemuProcessesOf } from '../support/fleet-agent.js';
import { eventually, killVmProcesses, processAlive } from '../support/qemu-guests.js';
import { CLI, startServer, type ServerProcess } from '../support/server-process.js';

/** The shell block between `<!-- NAME:start -->` and `<!-- NAME:end -->`. */
function readmeBlock(name: string): string {
  const readme = readFileSync('README.md', 'utf8');
  const block = new RegExp(`<!-- ${name}:start -->\n\`\`\`sh\n([\\s\\S]*?)\`\`\`\n<!-- ${name}:end -->`).exec(readme);
  if (!block) throw new Error(`README has no ${name} block`);
  return block[1]!;
}

/** A bin directory where `npx NAME` runs this checkout's built NAME. */
function shimBin(): string {
  const bin = mkdtempSync(join(tmpdir(), 'ppn-bin-'));
  const shims: Record<string, string> = {
    npx: 'exec "$@"',
    ppn: `exec "${process.execPath}" "${CLI.ppn}" "$@"`,
    'service-fs': `exec "${process.execPath}" "${CLI.fs}" "$@"`,
    'service-vm-host': `exec "${process.execPath}" "${CLI.host}" "$@"`,
  };
  for (const [name, body] of Object.entries(shims)) {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  return bin;
}

/** Runs a README block with bash (-euo pipefail) in the directory holding the server's data directory. */
function runBlock(script: string, server: ServerProcess, env: Record<string, string>): SpawnSyncReturns<string> {
  // stdin from /dev/null: bash takes a socket on stdin (node's pipes are socketpairs) for an ssh
  // session, and may then read /etc/bash.bashrc, whose errors under -u would land in stderr.
  return spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
    cwd: dirname(server.dataDir),
    encoding: 'utf8',
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** `script` with its one line `line` changed to `replacement`, after checking the line is there. */
function withLine(script: string, line: string, replacement: string): string {
  expect(script).toContain(`${line}\n`);
  return script.replace(`${line}\n`, `${replacement}\n`);
}

describe('README', () => {
  let server: ServerProcess;
  let walkthrough: SpawnSyncReturns<string>;
  let ppnWalkthrough: SpawnSyncReturns<string>;
  let team: SpawnSyncReturns<string>;
  let fleet: SpawnSyncReturns<string>;
  beforeAll(async () => {
    server = await startServer();
    const env = {
      PATH: `${shimBin()}:${process.env.PATH}`,
      // The remote read remembers the checkpoint it saw under $XDG_CONFIG_HOME: keep it out of $HOME.
      XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'ppn-config-')),
    };
    walkthrough = runBlock(withLine(readmeBlock('walkthrough'), 'PPN=http://127.0.0.1:9221', `PPN=${server.url}`), server, env);
    ppnWalkthrough = runBlock(withLine(readmeBlock('ppn-walkthrough'), 'PPN=http://127.0.0.1:9221', `PPN=${server.url}`), server, env);
    team = runBlock(withLine(readmeBlock('team'), 'export PPN_SERVER=http://127.0.0.1:9221', `export PPN_SERVER=${server.url}`), server, env);
    fleet = runBlock(withLine(readmeBlock('fleet'), 'PPN=http://127.0.0.1:9221', `PPN=${server.url}`), server, env);
  }, 300_000);
  afterAll(async () => {
    // The fleet block stops its agent and deletes its VM; this is for a block that failed halfway.
    const dir = dirname(server.dataDir);
    const pidFile = join(dir, 'globex-node.pid');
    const agentPid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : 0;
    if (agentPid > 1 && processAlive(agentPid) && readFileSync(`/proc/${agentPid}/cmdline`, 'utf8').includes('service-vm-host')) process.kill(agentPid, 'SIGKILL');
    killVmProcesses(join(dir, 'globex-node'));
    await server.stop();
  });

  describe('walk-through', () => {
    it('runs as written and shows each step', () => {
      expect(walkthrough.stderr).toBe('');
      expect(walkthrough.status).toBe(0);
      const out = walkthrough.stdout;
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
      const produced = /"ledger_index": (\d+)/.exec(walkthrough.stdout);
      expect(shown).not.toBeNull();
      expect(produced).not.toBeNull();
      expect(Number(shown![1])).toBe(Number(produced![1]));
    });
  });

  describe('the same walk-through with ppn', () => {
    it('runs as written; the only error is the quota refusal, which shows the limit and the usage', () => {
      expect(ppnWalkthrough.status, ppnWalkthrough.stderr).toBe(0);
      expect(ppnWalkthrough.stderr).toMatch(
        /^error: Quota exceeded \(429 quota_exceeded\)\n {2}creating this VM would exceed the tenant's max_vms quota \(limit 3, used 3, requested 1\)\n {2}vms: limit 3, used 3, requested 1 \(over max_vms\)\n {2}Next: free some \(ppn vm delete NAME\), or ask a platform admin to raise the limit \(ppn tenant set TENANT KEY=VALUE\)\.\n {2}\(POST \/v1\/vms on http:\/\/127\.0\.0\.1:\d+, request id \S+\)\n$/,
      );
      expect(ppnWalkthrough.stdout).toContain('exit code 1\n');
    });

    it('saves the remotes, issues the token to a 0600 file, and whoami names it', () => {
      const out = ppnWalkthrough.stdout;
      expect(out).toMatch(/^saved remote local \(http:\S+\), now current$/m);
      expect(out).toMatch(/^issued tok-\S+ \(service:tenant-admin, expires \S+\) to initech-admin\.token$/m);
      expect(statSync(join(dirname(server.dataDir), 'initech-admin.token')).mode & 0o777).toBe(0o600);
      expect(out).toMatch(/^saved remote initech \(http:\S+\), now current$/m);
      expect(out).toMatch(/^tenant +initech$/m);
      expect(out).toMatch(/^name +initech admin$/m);
    });

    it('lists no VMs, then the three created, and shows the usage table the README shows', () => {
      const out = ppnWalkthrough.stdout;
      for (const i of [1, 2, 3]) expect(out).toMatch(new RegExp(`^web-${i} +vm-[0-9a-z]{26} +pending: no node can run it yet`, 'm'));
      expect(out).toMatch(/^NAME +STATE +VCPUS +MEMORY +DISK +NODE +REASON\nweb-1 +pending .*\nweb-2 .*\nweb-3 .*\n/m);
      const shown = /and `tenant show` ends with[\s\S]*?```\n([\s\S]*?)```/.exec(readFileSync('README.md', 'utf8'));
      expect(shown).not.toBeNull();
      expect(out).toContain(shown![1]!);
      expect(out).toMatch(/^#\d+ \S+ VM_CREATE_DENIED tenant=initech actor=tok-\S+ /m);
    });
  });

  describe('hand out tokens to a team', () => {
    /** The blocks `ppn token inspect` printed: each heading line, and its indented `key value` lines. */
    const inspected = () => {
      const blocks: { heading: string; fields: Record<string, string> }[] = [];
      for (const line of team.stdout.split('\n')) {
        if (/^block \d+ \(/.test(line)) blocks.push({ heading: line, fields: {} });
        const field = /^ {2}(\w+) +(.*)$/.exec(line);
        if (field && blocks.length > 0) blocks[blocks.length - 1]!.fields[field[1]!] = field[2]!;
      }
      return blocks;
    };
    const ids = () => ({ root: inspected()[0]!.fields.id!, build: inspected()[1]!.fields.id! });

    it('runs as written; the only errors are the refusals it shows', () => {
      expect(team.status, team.stderr).toBe(0);
      const errors = team.stderr.split('\n').filter((line) => line !== '');
      expect(errors).toHaveLength(2);
      expect(errors[0]).toMatch(/^error: POST \/v1\/vms: 429 creating this VM would exceed token block tok-\S+'s max_vms quota \(limit 2, used 2, requested 1\)$/);
      expect(errors[1]).toBe('error: GET /v1/vms: 401 token has been revoked');
    });

    it('raises the quota the walk-through filled', () => {
      expect(team.stdout).toMatch(/^\{"max_vms":20,"usage":\{"vms":10,/m);
    });

    it("inspect shows the pop root and the machine's block with tenant:input and max_vms=2", () => {
      const [root, build, ...more] = inspected();
      expect(more).toEqual([]);
      expect(root!.heading).toMatch(/^block 0 \(root, signed by platform key \S+\)$/);
      expect(root!.fields).toMatchObject({ tenant: 'acme-corp', scopes: 'service:tenant-admin', limits: '(none)', pop: 'yes' });
      expect(build!.heading).toBe('block 1 (delegated, signed by the holder of block 0)');
      expect(build!.fields).toMatchObject({ scopes: 'tenant:input', limits: 'max_vms=2', pop: 'no' });
      expect(build!.fields.holder).toBe(readFileSync(join(dirname(server.dataDir), 'build-box.key.pub'), 'utf8').trim());
    });

    it("whoami, then two VMs under the machine's block and a third refused with 429 naming token:max_vms and the block", () => {
      const { root, build } = ids();
      const out = team.stdout;
      expect(out).toContain(`{"token_id":"${root}","name":"acme admin","scope":["service:tenant-admin"],"limits":null,"vms":0}\n`);
      expect(out).toContain(`{"token_id":"${build}","name":null,"scope":["tenant:input"],"limits":{"max_vms":2},"vms":0}\n`);
      for (const name of ['build-1', 'build-2']) expect(out).toContain(`{"name":"${name}","created_by":"${build}"}\n`);
      expect(out).toContain('"violated-policies": [\n    "token:max_vms"\n  ]');
      expect(out).toContain(`"block_id": "${build}"`);
    });

    it("sessions list the machine's use; ending its session revokes its block: the machine is refused, the administrator is not", () => {
      const { root, build } = ids();
      const out = team.stdout;
      // whoami and three creates: the refused third was admitted, then refused by the quota.
      expect(out).toContain(`{"token_id":"${build}","scope":["tenant:input"],"request_count":4}\n`);
      expect(out).toContain(`{"token_id":"${build}","chain":["${root}","${build}"],"revoked":true}\n`);
      expect(out).toContain('"detail": "token has been revoked"');
      expect(out.match(/^exit code 1$/gm)).toHaveLength(2);
      expect(out).toContain('{"name":"acme admin","scope":["service:tenant-admin"]}\n');
    });
  });

  describe('add a fleet node', () => {
    const vmId = () => /^(vm-\S+): running$/m.exec(fleet.stdout)?.[1];

    it('runs as written; the agent is stopped at the end and no QEMU process is left', async () => {
      expect(fleet.status, `${fleet.stderr}\n${readFileSync(join(dirname(server.dataDir), 'globex-node.log'), 'utf8')}`).toBe(0);
      expect(fleet.stderr).toBe('enrolled as compute-01; start the agent with "service-vm-host run"\n');
      const agentPid = Number(readFileSync(join(dirname(server.dataDir), 'globex-node.pid'), 'utf8').trim());
      expect(agentPid).toBeGreaterThan(1);
      await eventually('the agent ended by SIGTERM', () => (processAlive(agentPid) ? undefined : true));
      expect(vmId()).toBeDefined();
      expect(qemuProcessesOf(vmId()!)).toEqual([]);
    });

    it('enrolls the node ready with the capacity it found', () => {
      expect(fleet.stdout).toMatch(/^\{"node_id":"compute-01","state":"ready","capacity":\{"cpus":\d+,"kvm":(true|false)\}\}$/m);
    });

    it('the VM becomes running on compute-01 under one QEMU process named after it, and its console is readable', () => {
      const vm = vmId()!;
      const out = fleet.stdout;
      expect(out).toContain(
        `${vm}: running\n{"node_id":"compute-01","state":"ready","allocated":{"vms":1,"vcpus":1,"memory_mb":128,"disk_gb":1},"vms":[{"name":"hello","state":"running"}]}\n1\n{"vm_id":"${vm}","bytes":`,
      );
    });

    it('stop makes it stopped; delete answers 202, then the record and the VM directory are gone; the ledger counts each step', () => {
      const vm = vmId()!;
      const out = fleet.stdout;
      expect(out).toContain(`${vm}: stopped\nDELETE: 202\nGET after delete: 404\n`);
      expect(existsSync(join(dirname(server.dataDir), 'globex-node', 'vms', vm))).toBe(false);
      const counts = Object.fromEntries([...out.matchAll(/^ +(\d+) ((?:NODE|VM)_\w+)$/gm)].map((m) => [m[2], Number(m[1])]));
      expect(counts).toMatchObject({ NODE_ENROLLED: 1, VM_CREATED: 1, VM_DELETED: 1 });
      expect(counts.VM_STATE_CHANGED).toBeGreaterThanOrEqual(5);
    });
  });
});
