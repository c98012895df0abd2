/**
 * `service-vm-host` parts that need no server: `init` (the node key, as `ppn keygen` makes keys) and
 * the usage errors of `enroll` and `run`. The agent against a server is test/agent/host-agent.test.ts.
 */
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeBase64url, privateKeyFromPem, rawPublicKey } from '../../src/tokens/keys.js';
import { createPublicKey } from 'node:crypto';
import { CLI, runCli } from '../support/server-process.js';

function freshStateDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'ppn-host-cli-')), 'state');
}

const host = (...args: string[]) => runCli(CLI.host, args);

/** Refused: non-zero exit, nothing on stdout, one `error:` line on stderr and no stack trace. */
function expectRefused(result: { status: number | null; stdout: string; stderr: string }, message: RegExp, status = 1): void {
  expect(result.status).toBe(status);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('service-vm-host init', () => {
  it('makes the node key (0600) in a 0700 state directory and prints its public key in base64url', () => {
    const stateDir = freshStateDir();
    const result = host('init', '--state-dir', stateDir);
    expect(result.status).toBe(0);
    const printed = result.stdout.trim();
    expect(printed).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(stateDir, 'node.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(stateDir, 'node.pem.pub'), 'utf8').trim()).toBe(printed);
    const key = privateKeyFromPem(readFileSync(join(stateDir, 'node.pem'), 'utf8'));
    expect(encodeBase64url(rawPublicKey(createPublicKey(key)))).toBe(printed);
  });

  it('refuses to replace an existing node key, which stays as it was', () => {
    const stateDir = freshStateDir();
    expect(host('init', '--state-dir', stateDir).status).toBe(0);
    const before = readFileSync(join(stateDir, 'node.pem'), 'utf8');
    expectRefused(host('init', '--state-dir', stateDir), /node\.pem exists: this node has its key already/);
    expect(readFileSync(join(stateDir, 'node.pem'), 'utf8')).toBe(before);
  });
});

describe('service-vm-host usage errors', () => {
  it('enroll without --server, --token or --node-id is refused by the parser', () => {
    const result = host('enroll', '--token', 'pct1.x', '--node-id', 'n1', '--state-dir', freshStateDir());
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/required option '--server <url>' not specified/);
  });

  it('enroll before init says to run init first', () => {
    expectRefused(
      host('enroll', '--server', 'http://127.0.0.1:1', '--token', 'pct1.x', '--node-id', 'compute-01', '--state-dir', freshStateDir()),
      /run "service-vm-host init" first/,
    );
  });

  it('enroll refuses a node id that is not a DNS-label-like name, and a server that is not an http(s) URL', () => {
    const stateDir = freshStateDir();
    expect(host('init', '--state-dir', stateDir).status).toBe(0);
    expectRefused(host('enroll', '--server', 'http://127.0.0.1:1', '--token', 'pct1.x', '--node-id', 'Compute/01', '--state-dir', stateDir), /--node-id wants a name/, 2);
    expectRefused(
      host('enroll', '--server', 'ftp://example', '--token', 'pct1.x', '--node-id', 'compute-01', '--state-dir', stateDir),
      /--server wants an http\(s\) URL/,
    );
    expect(existsSync(join(stateDir, 'enrollment.json'))).toBe(false);
  });

  it('enroll against a server that is not there fails with the reason and remembers nothing', () => {
    const stateDir = freshStateDir();
    expect(host('init', '--state-dir', stateDir).status).toBe(0);
    expectRefused(
      host('enroll', '--server', 'http://127.0.0.1:1', '--token', 'pct1.x', '--node-id', 'compute-01', '--state-dir', stateDir),
      /cannot reach http:\/\/127\.0\.0\.1:1/,
    );
    expect(existsSync(join(stateDir, 'enrollment.json'))).toBe(false);
  });

  it('run before enroll says to enroll first', () => {
    const stateDir = freshStateDir();
    expect(host('init', '--state-dir', stateDir).status).toBe(0);
    expectRefused(host('run', '--state-dir', stateDir), /not enrolled .*run "service-vm-host enroll" first/);
  });

  it('run refuses a heartbeat interval or stop timeout that is not a positive whole number, and an unknown accelerator', () => {
    const stateDir = freshStateDir();
    expect(host('run', '--heartbeat-interval', '0', '--state-dir', stateDir).stderr).toMatch(/--heartbeat-interval must be a whole number from 1/);
    expect(host('run', '--stop-timeout', 'soon', '--state-dir', stateDir).stderr).toMatch(/--stop-timeout must be a whole number from 1/);
    expect(host('run', '--accel', 'hvf', '--state-dir', stateDir).stderr).toMatch(/Allowed choices are auto, kvm, tcg/);
  });

  it('help names the default state directory', () => {
    expect(host('init', '--help').stdout.replace(/\s+/g, ' ')).toMatch(/\/var\/lib\/ppn-host as root, \.\/\.ppn-host otherwise/);
  });
});
