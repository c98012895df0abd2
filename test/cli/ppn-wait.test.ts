/**
 * `ppn vm … --wait` with a node that runs VMs (issue 12): a real server process, and this test as
 * the fleet node, enrolled with its own key and heartbeating over real HTTP (signed, as the agent
 * does), reporting each VM placed on it in the state its reply asks for, or `failed` for one named
 * to fail. The built CLI waits in a child process (runCliAsync, so the node keeps beating).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { ppnUser } from '../support/ppn-cli.js';
import { api, CLI, runCliAsync, startServer, type ServerProcess } from '../support/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'ppn-wait-'));
const { env, ok } = ppnUser();
const CAPACITY = { cpus: 8, memory_mb_total: 16_384, memory_mb_available: 12_000, disk_gb_available: 500, kvm: true, load1: 0.5 };
/** VMs of this name fail on the node with this reason. */
const FAILING = 'broken';
const FAILURE = 'qemu: could not open disk image';

describe('ppn vm --wait with a fleet node', () => {
  let server: ServerProcess;
  let beating: NodeJS.Timeout;
  const node = generateKeyPair();

  beforeAll(async () => {
    server = await startServer(undefined, {}, { args: ['--heartbeat-interval', '1'] });
    writeFileSync(join(dir, 'admin.token'), `${server.adminToken}\n`);
    ok('remote', 'add', 'local', server.url, '--token-file', join(dir, 'admin.token'));
    ok('tenant', 'create', 'acme-corp');
    const nodePub = encodeBase64url(rawPublicKey(node.publicKey));
    const nodeToken = JSON.parse(ok('token', 'issue', '--subject', nodePub, '--scope', 'node:agent', '--expires-in', '1h', '--tenant', 'acme-corp', '--json'))
      .token as string;
    const enrolled = await api(server.url, 'POST', '/v1/nodes', { token: nodeToken, signWith: node.privateKey, body: { node_id: 'compute-01', capacity: CAPACITY } });
    expect(enrolled.status).toBe(201);

    // The node: report every VM it was given as its desired state asks (a deleted one as gone).
    let given: { vm_id: string; name: string; desired_state: string }[] = [];
    const beat = async () => {
      const vms = given
        .filter((vm) => vm.desired_state !== 'deleted')
        .map((vm) => (vm.name === FAILING ? { vm_id: vm.vm_id, state: 'failed', reason: FAILURE } : { vm_id: vm.vm_id, state: vm.desired_state }));
      const reply = await api(server.url, 'POST', '/v1/nodes/compute-01/heartbeat', { token: nodeToken, signWith: node.privateKey, body: { capacity: CAPACITY, vms } });
      if (reply.status === 200) given = reply.body.vms;
    };
    beating = setInterval(() => void beat().catch(() => undefined), 300);
  }, 60_000);
  afterAll(async () => {
    clearInterval(beating);
    await server?.stop();
  });

  const ppn = (...args: string[]) => runCliAsync(CLI.ppn, args, env);

  it('create --wait shows the VM pending, then placed, and ends when the node runs it', async () => {
    const result = await ppn('vm', 'create', 'web-1', '--tenant', 'acme-corp', '--wait', '--timeout', '60s');
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^web-1 {2}vm-[0-9a-z]{26} {2}running\n$/);
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    expect(lines[0]).toMatch(/^waiting for web-1 to be running \(0s\): pending: no node can run it yet/);
    expect(lines[lines.length - 1]).toMatch(/^web-1: running after \d+s$/);
  });

  it('stop --wait ends when the node reports it stopped; delete --wait when the node has let it go', async () => {
    const stopped = await ppn('vm', 'stop', 'web-1', '--wait', '--json');
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(JSON.parse(stopped.stdout)).toMatchObject({ name: 'web-1', state: 'stopped', node_id: 'compute-01' });
    const deleted = await ppn('vm', 'delete', 'web-1', '--wait', '-q');
    expect(deleted.status, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/^vm-[0-9a-z]{26}\n$/);
    expect(ok('vm', 'list', '--tenant', 'acme-corp', '-q')).toBe('');
  });

  it("fails with the VM's reason when the node cannot run it", async () => {
    const result = await ppn('vm', 'create', FAILING, '--tenant', 'acme-corp', '--wait', '--timeout', '60s');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^error: ${FAILING} failed: ${FAILURE}$`, 'm'));
  });
});
