/**
 * `ppn token inspect` and `ppn token delegate` (SPEC §5, offline delegation) as a holder runs them:
 * the built CLI as a child process, keys made by `ppn keygen`, a root token minted with a real
 * platform key. A delegated token must pass the server's verifier (verifyToken with that platform
 * key); what the server would refuse, the CLI refuses first with one clear line.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isoTime } from '../../src/clock.js';
import type { BlockClaims } from '../../src/tokens/format.js';
import { generateKeyPair, keyId } from '../../src/tokens/keys.js';
import { mintRootToken } from '../../src/tokens/mint.js';
import { verifyToken } from '../../src/tokens/verify.js';
import { CLI, runCli } from '../support/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'ppn-token-'));
const platform = generateKeyPair();
const kid = keyId(platform.publicKey);
const verifyOptions = () => ({ platformKey: (k: string) => (k === kid ? platform.publicKey : undefined), now: Date.now() });

const ppn = (...args: string[]) => runCli(CLI.ppn, args);

/** `ppn keygen`: the key file and the public key it printed. */
function keygen(name: string): { file: string; pub: string } {
  const file = join(dir, name);
  const result = ppn('keygen', '--out', file);
  expect(result.status).toBe(0);
  return { file, pub: result.stdout.trim() };
}

function mintRoot(holder: string, overrides: Partial<BlockClaims> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const claims: BlockClaims = {
    kid,
    tid: 'acme',
    sub: holder,
    scp: ['tenant:input'],
    iat: now,
    exp: now + 3600,
    jti: 'tok-root',
    lim: { max_vms: 5 },
    pop: true,
    ...overrides,
  };
  return mintRootToken(claims, platform.privateKey);
}

/** Refused: non-zero exit, nothing on stdout, one `error:` line on stderr and no stack trace. */
function expectRefused(result: ReturnType<typeof runCli>, message: RegExp): void {
  expect(result.status).not.toBe(0);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/^error: /);
  expect(result.stderr).toMatch(message);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).not.toMatch(/^\s+at |node:internal/m);
}

let alice: { file: string; pub: string };
let bob: { file: string; pub: string };
let carol: { file: string; pub: string };
let root: string;

beforeAll(() => {
  alice = keygen('alice');
  bob = keygen('bob');
  carol = keygen('carol');
  root = mintRoot(alice.pub);
});

describe('ppn token delegate', () => {
  const delegate = (...args: string[]) => ppn('token', 'delegate', '--token', root, '--key', alice.file, ...args);

  it('appends a narrower block for the new holder that the server-side verifier accepts', () => {
    const result = delegate('--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '600', '--limit', 'max_vms=2');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const token = result.stdout.trim();
    expect(token.startsWith(`${root}.`)).toBe(true);
    const verified = verifyToken(token, verifyOptions());
    expect(verified).toMatchObject({ tenantId: 'acme', subject: bob.pub, scopes: ['tenant:read'], proofOfPossession: true });
    expect(verified.chain.map((link) => link.sub)).toEqual([alice.pub, bob.pub]);
    expect(verified.chain[1]!.lim).toEqual({ max_vms: 2 });
    expect(verified.expiresAt - Math.floor(Date.now() / 1000)).toBeGreaterThan(590);
  });

  it('carries the parent limits down when none are given, and marks the block pop with --pop', () => {
    const token = delegate('--subject', bob.pub, '--scope', 'tenant:user', '--expires-in', '600', '--pop').stdout.trim();
    const inspected = JSON.parse(ppn('token', 'inspect', token, '--json').stdout);
    expect(inspected.blocks[1]).toMatchObject({ holder: bob.pub, scopes: ['tenant:user'], limits: { max_vms: 5 }, pop: true });
  });

  it('lets the new holder delegate further with its own key, reading the token from a file', () => {
    const file = join(dir, 'bob.token');
    writeFileSync(file, delegate('--subject', bob.pub, '--scope', 'tenant:user,tenant:read', '--expires-in', '900').stdout);
    const result = ppn('token', 'delegate', '--token', file, '--key', bob.file, '--subject', carol.pub, '--scope', 'tenant:read', '--expires-in', '60');
    expect(result.status).toBe(0);
    const verified = verifyToken(result.stdout.trim(), verifyOptions());
    expect(verified.chain.map((link) => link.sub)).toEqual([alice.pub, bob.pub, carol.pub]);
    expect(verified.scopes).toEqual(['tenant:read']);
  });

  it('refuses a wider scope, naming what the token has', () => {
    expectRefused(
      delegate('--subject', bob.pub, '--scope', 'service:tenant-admin', '--expires-in', '60'),
      /refused: delegated scopes exceed the token's scopes; the token has scopes tenant:input/,
    );
  });

  it("refuses an expiry later than the token's", () => {
    expectRefused(
      delegate('--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '7200'),
      /refused: delegated expiry is later than the token's expiry; .*expires .* \(in \d+ s\)/,
    );
  });

  it("refuses larger limits than the token's", () => {
    expectRefused(
      delegate('--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '60', '--limit', 'max_vms=6'),
      /refused: delegated limits exceed the token's limits; .*limits max_vms=5/,
    );
  });

  it("refuses a key that is not the current holder's", () => {
    const result = ppn('token', 'delegate', '--token', root, '--key', bob.file, '--subject', carol.pub, '--scope', 'tenant:read', '--expires-in', '60');
    expectRefused(result, new RegExp(`is not this token's holder; it is held by ${alice.pub}`));
  });

  it('refuses a token whose root does not demand proof of possession', () => {
    const bearer = mintRoot(alice.pub, { pop: false });
    const result = ppn('token', 'delegate', '--token', bearer, '--key', alice.file, '--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '60');
    expectRefused(result, /refused: only a token whose root demands proof of possession \(pop\) can be delegated/);
  });

  it('refuses an expired token', () => {
    const old = Math.floor(Date.now() / 1000) - 7200;
    const expired = mintRoot(alice.pub, { iat: old, exp: old + 60 });
    const result = ppn('token', 'delegate', '--token', expired, '--key', alice.file, '--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '60');
    expectRefused(result, new RegExp(`the token expired at ${isoTime((old + 60) * 1000)}`));
  });

  it('refuses bad arguments: a subject that is no key, an unknown scope, an unknown limit, a key file that is not a key', () => {
    expectRefused(delegate('--subject', 'bob', '--scope', 'tenant:read', '--expires-in', '60'), /--subject wants an Ed25519 public key/);
    expectRefused(delegate('--subject', bob.pub, '--scope', 'tenant:write', '--expires-in', '60'), /unknown scope "tenant:write"/);
    expectRefused(delegate('--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '60', '--limit', 'vms=2'), /--limit wants KEY=N with KEY one of max_vms/);
    expectRefused(
      ppn('token', 'delegate', '--token', root, '--key', `${alice.file}.pub`, '--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '60'),
      /is not an Ed25519 private key in PEM/,
    );
    expectRefused(
      ppn('token', 'delegate', '--token', 'nothing-here', '--key', alice.file, '--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '60'),
      /--token wants a token \(pct1\.…\) or a file holding one/,
    );
  });
});

describe("ppn token delegate as a saved remote's holder", () => {
  /** A fresh ppn config home, and ppn run with it and nothing of the caller's PPN_* environment. */
  function home(): { env: Record<string, string>; run: (...args: string[]) => ReturnType<typeof runCli> } {
    const env = { XDG_CONFIG_HOME: mkdtempSync(join(dir, 'config-')), PPN_TOKEN: '', PPN_KEY: '', PPN_SERVER: '' };
    return { env, run: (...args: string[]) => runCli(CLI.ppn, args, env) };
  }
  const narrow = () => ['--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '600'];

  it('takes the token and key from the current remote, a named one with --remote, or PPN_TOKEN and PPN_KEY', () => {
    const { run } = home();
    const tokenFile = join(dir, 'alice-saved.token');
    writeFileSync(tokenFile, `${root}\n`);
    expect(run('remote', 'add', 'acme', 'http://127.0.0.1:9221', '--token-file', tokenFile, '--key', alice.file).status).toBe(0);
    // bob's remote is not current: --remote picks it.
    const bobToken = run('token', 'delegate', ...narrow()).stdout.trim();
    writeFileSync(join(dir, 'bob-saved.token'), bobToken);
    expect(run('remote', 'add', 'bob', 'http://127.0.0.1:9221', '--token', bobToken, '--key', bob.file, '--inline').status).toBe(0);
    expect(verifyToken(bobToken, verifyOptions()).chain.map((link) => link.sub)).toEqual([alice.pub, bob.pub]);

    const fromBob = run('token', 'delegate', '--remote', 'bob', '--subject', carol.pub, '--scope', 'tenant:read', '--expires-in', '60');
    expect(fromBob.stderr).toBe('');
    expect(verifyToken(fromBob.stdout.trim(), verifyOptions()).chain.map((link) => link.sub)).toEqual([alice.pub, bob.pub, carol.pub]);

    // --token given, the key still the current remote's.
    const mixed = run('token', 'delegate', '--token', root, ...narrow());
    expect(mixed.status).toBe(0);
    // The environment over the current remote, as for a call to the server.
    const { run: bare } = home();
    const fromEnv = runCli(CLI.ppn, ['token', 'delegate', '--subject', carol.pub, '--scope', 'tenant:read', '--expires-in', '60'], {
      ...home().env,
      PPN_TOKEN: join(dir, 'bob-saved.token'),
      PPN_KEY: bob.file,
    });
    expect(fromEnv.stderr).toBe('');
    expect(verifyToken(fromEnv.stdout.trim(), verifyOptions()).chain.map((link) => link.sub)).toEqual([alice.pub, bob.pub, carol.pub]);
    expectRefused(bare('token', 'delegate', ...narrow()), /no token to delegate: give --token, or save one with the remote \(the environment has none\)/);
  });

  it("refuses, naming where it looked: no token saved, no key saved, an unknown remote, the wrong holder's key", () => {
    const { run } = home();
    expect(run('remote', 'add', 'tokenless', 'http://127.0.0.1:9221').status).toBe(0);
    expectRefused(run('token', 'delegate', ...narrow()), /no token to delegate: give --token, or save one with the remote \(remote "tokenless" has none\)/);
    expect(run('remote', 'add', 'keyless', 'http://127.0.0.1:9221', '--token', root, '--use').status).toBe(0);
    expectRefused(run('token', 'delegate', ...narrow()), /no holder key to sign with: give --key, or save one with the remote \(remote "keyless" has none\)/);
    expectRefused(run('token', 'delegate', '--remote', 'nowhere', ...narrow()), /no remote named "nowhere"; the remotes are tokenless, keyless/);
    expect(run('remote', 'add', 'wrong', 'http://127.0.0.1:9221', '--token', root, '--key', bob.file, '--use').status).toBe(0);
    expectRefused(
      run('token', 'delegate', ...narrow()),
      new RegExp(`refused: the key ${bob.file} \\(public key ${bob.pub}\\) is not this token's holder; it is held by ${alice.pub}`),
    );
  });
});

describe('ppn token delegate --name and --description', () => {
  const delegate = (...args: string[]) =>
    ppn('token', 'delegate', '--token', root, '--key', alice.file, '--subject', bob.pub, '--scope', 'tenant:read', '--expires-in', '600', ...args);

  it('names the new block: the name is in its signed claims, and inspect shows it in text and JSON', () => {
    const result = delegate('--name', 'bob laptop — CI', '--description', 'Bob’s build machine; revoke when he leaves');
    expect(result.stderr).toBe('');
    const token = result.stdout.trim();
    expect(verifyToken(token, verifyOptions()).chain[1]).toMatchObject({ nam: 'bob laptop — CI', dsc: 'Bob’s build machine; revoke when he leaves' });
    const text = ppn('token', 'inspect', token).stdout;
    expect(text).toContain('  pop      no\n  name     bob laptop — CI\n  about    Bob’s build machine; revoke when he leaves\n');
    // The root's name, if it has one, is kept by the server: the root block shows none.
    expect(text.match(/ {2}name /g)).toHaveLength(1);
    const json = JSON.parse(ppn('token', 'inspect', token, '--json').stdout);
    expect(json.blocks.map((b: { name: string | null; description: string | null }) => [b.name, b.description])).toEqual([
      [null, null],
      ['bob laptop — CI', 'Bob’s build machine; revoke when he leaves'],
    ]);
  });

  it('refuses a name or description that is empty, too long or not printable, saying what it takes without echoing it', () => {
    for (const name of ['', 'n'.repeat(65), 'bob\nforged line', 'red\u001b[31m', 'invoice\u202egpj']) {
      expectRefused(delegate('--name', name), /--name wants printable text of 1 to 64 characters/);
    }
    for (const description of ['', 'd'.repeat(257), 'a\tb']) {
      expectRefused(delegate('--description', description), /--description wants printable text of 1 to 256 characters/);
    }
  });

  it('refuses a description that would take the token past 4096 bytes, saying a shorter one would fit', () => {
    // 256 four-byte characters are about 1.4 KB of base64url a block: the third such block does not fit.
    const long = '😀'.repeat(256);
    const describedTo = (token: string, from: { file: string }, to: { pub: string }, seconds: string) =>
      ppn('token', 'delegate', '--token', token, '--key', from.file, '--subject', to.pub, '--scope', 'tenant:read', '--expires-in', seconds, '--description', long);
    const first = describedTo(root, alice, bob, '600');
    expect(first.status, first.stderr).toBe(0);
    const second = describedTo(first.stdout.trim(), bob, carol, '300');
    expect(second.status, second.stderr).toBe(0);
    expectRefused(
      describedTo(second.stdout.trim(), carol, alice, '60'),
      /refused: the token would exceed 4096 bytes; a shorter --name or --description would leave room/,
    );
  });
});

describe('ppn token inspect', () => {
  it('prints every block: id, holder, scopes, expiry, limits and pop', () => {
    const token = ppn(
      'token',
      'delegate',
      '--token',
      root,
      '--key',
      alice.file,
      '--subject',
      bob.pub,
      '--scope',
      'tenant:read',
      '--expires-in',
      '600',
      '--limit',
      'max_vms=1',
    ).stdout.trim();
    const result = ppn('token', 'inspect', token);
    expect(result.status).toBe(0);
    const childId = verifyToken(token, verifyOptions()).tokenId;
    expect(result.stdout).toContain(`block 0 (root, signed by platform key ${kid})`);
    expect(result.stdout).toMatch(/ {2}tenant {3}acme\n {2}id {7}tok-root\n/);
    expect(result.stdout).toContain(`  holder   ${alice.pub}\n  scopes   tenant:input\n`);
    expect(result.stdout).toContain('block 1 (delegated, signed by the holder of block 0)');
    expect(result.stdout).toContain(`  id       ${childId}\n  holder   ${bob.pub}\n  scopes   tenant:read\n`);
    expect(result.stdout).toContain('  limits   max_vms=1\n  pop      no\n');
    expect(result.stdout).toContain('  limits   max_vms=5\n  pop      yes\n');
  });

  it('prints JSON with --json, reading the token from a file', () => {
    const file = join(dir, 'root.token');
    writeFileSync(file, `${root}\n`);
    const result = ppn('token', 'inspect', file, '--json');
    expect(result.status).toBe(0);
    const claims = JSON.parse(Buffer.from(root.split('.')[1]!, 'base64url').toString());
    expect(JSON.parse(result.stdout)).toEqual({
      token_id: 'tok-root',
      blocks: [
        {
          index: 0,
          id: 'tok-root',
          kid,
          tenant_id: 'acme',
          holder: alice.pub,
          scopes: ['tenant:input'],
          issued_at: isoTime(claims.iat * 1000),
          expires_at: isoTime(claims.exp * 1000),
          limits: { max_vms: 5 },
          pop: true,
          name: null,
          description: null,
        },
      ],
    });
    expect(readFileSync(file, 'utf8')).toBe(`${root}\n`);
  });

  it('refuses text that is not a token', () => {
    expectRefused(ppn('token', 'inspect', 'pct1.e30'), /not a valid token: token has an incomplete block/);
  });
});
