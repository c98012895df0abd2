/**
 * `service-fs --url --token` (SPEC §8, src/cli/remote.ts) against real servers, on both stores: the
 * ledger read from a server is checked client-side (every entry's inclusion proof, the checkpoint's
 * signature by the ledger key pinned on first use or given with --ledger-key), and the last
 * checkpoint seen is remembered in <XDG_CONFIG_HOME>/ppn/ledger-state.json so that the next one must
 * be proven consistent with it. Servers that fork or roll back the history, serve an altered entry
 * or an altered signature are refused. Each CLI run gets its own XDG_CONFIG_HOME; a small HTTP proxy
 * in the test records what the client asks for, or lies.
 */
import { generateKeyPairSync } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initDataDir, writeLedgerPublicKey } from '../../src/config/data-dir.js';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { hashLeaf, verifyInclusion } from '../../src/ledger/merkle.js';
import { openNote, parseVerifierKey } from '../../src/ledger/note.js';
import { api, CLI, runCli, runCliAsync, startServer, tempDataDir, within, type ServerProcess } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

/** A fresh config directory, standing for one user's ~/.config. */
const configDir = () => mkdtempSync(join(tmpdir(), 'ppn-xdg-'));
const stateFile = (config: string) => join(config, 'ppn', 'ledger-state.json');
const stateOf = (config: string) => JSON.parse(readFileSync(stateFile(config), 'utf8')) as { keys: Record<string, string>; checkpoints: Record<string, string> };

const noteSize = (note: string) => parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1)).size;
const subjectKey = () => generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;

/** `service-fs <args> --url <url> --token <token>` with its own config directory. */
function remote(config: string, url: string, token: string, ...args: string[]) {
  return runCliAsync(CLI.fs, [...args, '--url', url, '--token', token], { XDG_CONFIG_HOME: config });
}

/** `service-fs read --json` on the data directory, as printed. */
function localRead(dataDir: string, ...args: string[]): string {
  const out = runCli(CLI.fs, ['read', '--data-dir', dataDir, '--json', ...args]);
  expect(out.stderr).toBe('');
  expect(out.status).toBe(0);
  return out.stdout;
}
const linesOf = (stdout: string) => stdout.split('\n').filter((line) => line !== '');

interface Proxy {
  url: string;
  /** Every request path (with its query) the proxy was asked for, in order. */
  paths: string[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of `target` that passes GETs through, optionally rewriting a successful
 * response's body first (`rewrite` gets the request path and the body; returns the body to send).
 */
async function startProxy(target: string, rewrite?: (path: string, body: string) => string): Promise<Proxy> {
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    paths.push(path);
    const headers: Record<string, string> = {};
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    fetch(`${target}${path}`, { method: req.method ?? 'GET', headers })
      .then(async (upstream) => {
        let body = await upstream.text();
        if (rewrite && upstream.status === 200) body = rewrite(path, body);
        res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'text/plain' });
        res.end(body);
      })
      .catch((error: unknown) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    paths,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

describe(`service-fs --url: the ledger read from a server, trusting only what it proves (${TEST_STORE})`, () => {
  let server: ServerProcess;
  let ledgerPub: string;
  let origin: string;
  /** A tenant:read token of tenant acme. */
  let acmeReader: string;
  const extraServers: ServerProcess[] = [];
  const proxies: Proxy[] = [];

  const admin = () => ({ token: server.adminToken });

  async function latestNote(target: ServerProcess): Promise<string | null> {
    const res = await fetch(`${target.url}/v1/ledger/checkpoint`, { headers: { authorization: `Bearer ${target.adminToken}` } });
    return res.status === 200 ? res.text() : null;
  }

  /** Waits until the server's latest checkpoint covers all its entries; returns that checkpoint. */
  async function covered(target: ServerProcess): Promise<string> {
    const size = linesOf(localRead(target.dataDir)).length;
    let note = '';
    const took = await within(
      10_000,
      async () => {
        note = (await latestNote(target)) ?? '';
        return note !== '' && noteSize(note) === size;
      },
      50,
    );
    expect(took, `no checkpoint covered the ${size} entries`).not.toBeNull();
    return note;
  }

  async function createTenant(target: ServerProcess, tenantId: string, displayName: string): Promise<void> {
    const res = await api(target.url, 'POST', '/v1/tenants', {
      token: target.adminToken,
      body: { tenant_id: tenantId, display_name: displayName, max_vms: 10, storage_quota_gb: 1000, api_rate_limit_rpm: 10_000 },
    });
    expect(res.status).toBe(201);
  }

  async function proxy(rewrite?: (path: string, body: string) => string): Promise<Proxy> {
    const started = await startProxy(server.url, rewrite);
    proxies.push(started);
    return started;
  }

  /** A server on a new data directory holding a copy of the first one's keys (so the same ledger key), with its own store. */
  async function forkServer(): Promise<ServerProcess> {
    const dataDir = tempDataDir();
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    cpSync(join(server.dataDir, 'keys'), join(dataDir, 'keys'), { recursive: true });
    expect(existsSync(join(dataDir, 'database.url'))).toBe(false);
    const fork = await startServer(dataDir);
    extraServers.push(fork);
    expect(readFileSync(join(dataDir, 'ledger.pub'), 'utf8')).toBe(ledgerPub);
    return fork;
  }

  beforeAll(async () => {
    server = await startServer();
    ledgerPub = readFileSync(join(server.dataDir, 'ledger.pub'), 'utf8');
    origin = parseVerifierKey(ledgerPub).name;
    await createTenant(server, 'acme', 'Acme Corporation');
    await createTenant(server, 'globex', 'Globex');
    const reader = await api(server.url, 'POST', '/v1/tenants/acme/tokens', {
      ...admin(),
      body: { subject_pubkey: subjectKey(), scope: 'tenant:read', expires_in_seconds: 3600 },
    });
    expect(reader.status).toBe(201);
    acmeReader = reader.body.token;
    for (const [tenant, name] of [
      ['acme', 'web-1'],
      ['acme', 'web-2'],
      ['globex', 'db-1'],
    ] as const) {
      expect((await api(server.url, 'POST', `/v1/vms?tenant_id=${tenant}`, { ...admin(), body: { name } })).status).toBe(201);
    }
    await covered(server);
  });
  afterEach(async () => {
    for (const p of proxies.splice(0)) await p.close();
  });
  afterAll(async () => {
    for (const s of [...extraServers, server]) {
      if (s && s.process.exitCode === null && s.process.signalCode === null) await s.stop();
    }
  });

  it('(a) read --json prints what the local read prints, pins the key on first use, remembers the checkpoint, and next time demands a consistency proof', async () => {
    const config = configDir();
    const recorder = await proxy();
    const before = await covered(server);
    const size1 = noteSize(before);

    const first = await remote(config, recorder.url, server.adminToken, 'read', '--json');
    expect(first.status).toBe(0);
    expect(first.stdout).toBe(localRead(server.dataDir));
    expect(linesOf(first.stdout)).toHaveLength(size1);
    expect(first.stderr).toBe(`trusting ledger key ${ledgerPub.trim()} for ${recorder.url} from now on (first use; pin one with --ledger-key <ledger.pub>)\n`);
    // Every entry was proven against the signed checkpoint; there was nothing to be consistent with.
    const inclusion = recorder.paths.filter((p) => p.startsWith('/v1/ledger/proof/inclusion?'));
    expect(new Set(inclusion)).toEqual(new Set(Array.from({ length: size1 }, (_, i) => `/v1/ledger/proof/inclusion?index=${i}&tree_size=${size1}`)));
    expect(recorder.paths.filter((p) => p.startsWith('/v1/ledger/proof/consistency'))).toEqual([]);

    const state = stateOf(config);
    expect(state.keys).toEqual({ [recorder.url]: ledgerPub.trim() });
    expect(state.checkpoints).toEqual({ [origin]: before });

    await createTenant(server, 'initech', 'Initech');
    expect((await api(server.url, 'POST', '/v1/vms?tenant_id=initech', { ...admin(), body: { name: 'tps-1' } })).status).toBe(201);
    const after = await covered(server);
    const size2 = noteSize(after);
    expect(size2).toBe(size1 + 2);

    recorder.paths.length = 0;
    const second = await remote(config, recorder.url, server.adminToken, 'read', '--json');
    expect(second.stderr).toBe('');
    expect(second.status).toBe(0);
    expect(second.stdout).toBe(localRead(server.dataDir));
    expect(recorder.paths).toContain(`/v1/ledger/proof/consistency?from=${size1}&to=${size2}`);
    expect(recorder.paths).not.toContain('/v1/ledger/key');
    expect(stateOf(config).checkpoints).toEqual({ [origin]: after });
  });

  it("(b) --ledger-key with the data directory's ledger.pub is used instead of trust on first use; another directory's key is refused", async () => {
    const config = configDir();
    const good = await remote(config, server.url, server.adminToken, 'read', '--json', '--ledger-key', join(server.dataDir, 'ledger.pub'));
    expect(good.stderr).toBe('');
    expect(good.status).toBe(0);
    expect(good.stdout).toBe(localRead(server.dataDir));
    expect(stateOf(config).keys).toEqual({ [server.url]: ledgerPub.trim() });

    const otherDir = tempDataDir();
    initDataDir(otherDir);
    const otherKey = writeLedgerPublicKey(otherDir);
    const otherName = parseVerifierKey(otherKey).name;
    expect(otherName).not.toBe(origin);
    const refusal = `error: the server's checkpoint is refused: note has no signature by ${otherName}\n`;

    const fresh = configDir();
    const wrong = await remote(fresh, server.url, server.adminToken, 'read', '--json', '--ledger-key', join(otherDir, 'ledger.pub'));
    expect(wrong.status).not.toBe(0);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toBe(refusal);
    expect(existsSync(stateFile(fresh))).toBe(false);

    // Also when the right key was pinned before: the state is left as it was.
    const stateBefore = readFileSync(stateFile(config), 'utf8');
    const wrongAgain = await remote(config, server.url, server.adminToken, 'read', '--json', '--ledger-key', otherKey);
    expect(wrongAgain.status).not.toBe(0);
    expect(wrongAgain.stdout).toBe('');
    expect(wrongAgain.stderr).toBe(refusal);
    expect(readFileSync(stateFile(config), 'utf8')).toBe(stateBefore);
  });

  it("(c) a tenant token's read shows only that tenant's entries, each proven", async () => {
    const config = configDir();
    const recorder = await proxy();
    const size = noteSize(await covered(server));
    const out = await remote(config, recorder.url, acmeReader, 'read', '--json', '--ledger-key', join(server.dataDir, 'ledger.pub'));
    expect(out.stderr).toBe('');
    expect(out.status).toBe(0);
    expect(out.stdout).toBe(localRead(server.dataDir, '--filter', 'tenant-id=acme'));

    const entries = linesOf(out.stdout).map((line) => JSON.parse(line) as { index: number; tenant_id: string | null });
    expect(entries.length).toBeGreaterThanOrEqual(4); // TENANT_CREATED, TOKEN_ISSUED, two VM_CREATED
    expect(entries.every((entry) => entry.tenant_id === 'acme')).toBe(true);
    expect(linesOf(localRead(server.dataDir)).some((line) => (JSON.parse(line) as { tenant_id: string | null }).tenant_id === 'globex')).toBe(true);
    const inclusion = recorder.paths.filter((p) => p.startsWith('/v1/ledger/proof/inclusion?'));
    expect(new Set(inclusion)).toEqual(new Set(entries.map((entry) => `/v1/ledger/proof/inclusion?index=${entry.index}&tree_size=${size}`)));
  });

  it('(d) a server with the same ledger key but a forked history is refused, whether longer, as long, or rolled back', async () => {
    const config = configDir();
    const seenNote = await covered(server);
    const seen = noteSize(seenNote);
    const honest = await remote(config, server.url, server.adminToken, 'read', '--json');
    expect(honest.status).toBe(0);
    expect(stateOf(config).checkpoints).toEqual({ [origin]: seenNote });

    const notExtension = (url: string) => `refused: ${url} serves a history of ledger ${origin} that is not an extension of the one seen before \\(size ${seen}\\): `;

    // The fork starts with its own admin token's entry; grow it to exactly the size seen.
    const fork = await forkServer();
    for (let i = linesOf(localRead(fork.dataDir)).length; i < seen; i++) await createTenant(fork, `fork-${i}`, `Fork ${i}`);
    expect(noteSize(await covered(fork))).toBe(seen);
    // On its own, the fork's ledger is well signed: a reader who never saw the first server accepts it.
    expect((await remote(configDir(), fork.url, fork.adminToken, 'read', '--json')).status).toBe(0);

    const sameSize = await remote(config, fork.url, fork.adminToken, 'read', '--json');
    expect(sameSize.status).not.toBe(0);
    expect(sameSize.stdout).toBe('');
    expect(sameSize.stderr).toMatch(new RegExp(`${notExtension(fork.url)}its root at size ${seen} differs\\n$`));

    for (let i = 0; i < 3; i++) await createTenant(fork, `fork-more-${i}`, `Fork more ${i}`);
    const longer = noteSize(await covered(fork));
    expect(longer).toBe(seen + 3);
    const extended = await remote(config, fork.url, fork.adminToken, 'read', '--json');
    expect(extended.status).not.toBe(0);
    expect(extended.stdout).toBe('');
    expect(extended.stderr).toMatch(new RegExp(`${notExtension(fork.url)}the consistency proof from size ${seen} to ${longer} does not verify\\n$`));

    // A server with fewer entries than seen: the history rolled back.
    const rolledBack = await forkServer();
    const short = noteSize(await covered(rolledBack));
    expect(short).toBeLessThan(seen);
    const back = await remote(config, rolledBack.url, rolledBack.adminToken, 'read', '--json');
    expect(back.status).not.toBe(0);
    expect(back.stdout).toBe('');
    expect(back.stderr).toMatch(new RegExp(`${notExtension(rolledBack.url)}its checkpoint is smaller \\(size ${short}\\)\\n$`));

    // None of that replaced the history remembered, and the honest server still reads.
    expect(stateOf(config).checkpoints).toEqual({ [origin]: seenNote });
    const again = await remote(config, server.url, server.adminToken, 'read', '--json');
    expect(again.stderr).toBe('');
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(honest.stdout);
  });

  it('(e) a server that alters an entry is refused naming it and nothing of it is printed; an altered checkpoint signature is refused', async () => {
    await covered(server);
    const lines = linesOf(localRead(server.dataDir));
    const target = lines
      .map((line) => JSON.parse(line) as { index: number; event_type: string; tenant_id: string })
      .find((e) => e.event_type === 'TENANT_CREATED' && e.tenant_id === 'globex')!;
    expect(lines[target.index]).toContain('"display_name":"Globex"');

    let altered = 0;
    const liar = await proxy((path, body) => {
      if (!path.startsWith('/v1/ledger/entries')) return body;
      const page = JSON.parse(body) as { items: { index: number; leaf_input: string; entry: Record<string, unknown> }[] };
      for (const item of page.items) {
        if (item.index !== target.index) continue;
        item.leaf_input = item.leaf_input.replace('"display_name":"Globex"', '"display_name":"Globex (under new management)"');
        item.entry = JSON.parse(item.leaf_input) as Record<string, unknown>;
        altered++;
      }
      return JSON.stringify(page);
    });
    const out = await remote(configDir(), liar.url, server.adminToken, 'read', '--json', '--ledger-key', join(server.dataDir, 'ledger.pub'));
    expect(altered).toBe(1);
    expect(out.status).not.toBe(0);
    expect(out.stdout).toBe('');
    expect(out.stderr).toMatch(new RegExp(`^error: refused: entry ${target.index} as served is not in the signed tree of size \\d+\\n$`));

    // A signature whose bytes were changed (the key hash kept, so it still claims the ledger key).
    const forger = await proxy((path, body) => {
      if (path !== '/v1/ledger/checkpoint') return body;
      return body.replace(
        / (\S+)\n$/,
        (_m, blob: string) => ` ${Buffer.from(Buffer.from(blob, 'base64').map((b, i) => (i === 20 ? b ^ 0x01 : b))).toString('base64')}\n`,
      );
    });
    for (const command of [['read', '--json'], ['checkpoint'], ['verify']]) {
      const config = configDir();
      const forged = await remote(config, forger.url, server.adminToken, ...command, '--ledger-key', join(server.dataDir, 'ledger.pub'));
      expect(forged.status, command.join(' ')).not.toBe(0);
      expect(forged.stdout).toBe('');
      expect(forged.stderr).toBe(`error: the server's checkpoint is refused: the signature by ${origin} does not verify\n`);
      expect(existsSync(stateFile(config))).toBe(false);
    }
  });

  it('(f) remote verify and prove succeed against an honest server; --url with --data-dir, and a --ledger-key that is no key, are usage errors', async () => {
    const note = await covered(server);
    const size = noteSize(note);
    const lines = linesOf(localRead(server.dataDir));
    expect(lines).toHaveLength(size);
    const config = configDir();

    const verified = await remote(config, server.url, server.adminToken, 'verify', '--ledger-key', join(server.dataDir, 'ledger.pub'));
    expect(verified.stderr).toBe('');
    expect(verified.status).toBe(0);
    expect(verified.stdout).toBe(
      `ledger verified remotely: all ${size} entries of the signed checkpoint, whose root they recompute, and which extends every checkpoint seen before\n`,
    );

    // A tenant's token: each of its entries proven on its own.
    const acmeCount = linesOf(localRead(server.dataDir, '--filter', 'tenant-id=acme')).length;
    const tenantVerified = await remote(configDir(), server.url, acmeReader, 'verify', '--ledger-key', join(server.dataDir, 'ledger.pub'));
    expect(tenantVerified.stderr).toBe('');
    expect(tenantVerified.status).toBe(0);
    expect(tenantVerified.stdout).toMatch(
      new RegExp(`^ledger verified remotely: ${acmeCount} entries visible to this token, each proven in the signed checkpoint of size \\d+`),
    );

    // A platform token sees the whole ledger: a server that leaves an entry out is caught.
    const dropper = await proxy((path, body) => {
      if (!path.startsWith('/v1/ledger/entries')) return body;
      const page = JSON.parse(body) as { items: { index: number }[] };
      page.items = page.items.filter((item) => item.index !== 2);
      return JSON.stringify(page);
    });
    const dropped = await remote(configDir(), dropper.url, server.adminToken, 'verify', '--ledger-key', join(server.dataDir, 'ledger.pub'));
    expect(dropped.status).not.toBe(0);
    expect(dropped.stdout).toBe('');
    expect(dropped.stderr).toMatch(/^error: refused: the server did not serve entry 2 of the \d+ its checkpoint covers\n$/);

    const checkpoint = await remote(config, server.url, server.adminToken, 'checkpoint');
    expect(checkpoint.stderr).toBe('');
    expect(checkpoint.status).toBe(0);
    expect(checkpoint.stdout).toBe(note);

    const index = 3;
    const proved = await remote(config, server.url, server.adminToken, 'prove', String(index));
    expect(proved.stderr).toBe('');
    expect(proved.status).toBe(0);
    const result = JSON.parse(proved.stdout) as { index: number; tree_size: number; leaf_hash: string; proof: string[]; checkpoint: string };
    expect(result).toMatchObject({ index, tree_size: size, checkpoint: note });
    const signed = parseCheckpoint(openNote(result.checkpoint, parseVerifierKey(ledgerPub)));
    const leaf = hashLeaf(Buffer.from(lines[index]!));
    expect(result.leaf_hash).toBe(leaf.toString('hex'));
    expect(
      verifyInclusion(
        index,
        signed.size,
        leaf,
        result.proof.map((h) => Buffer.from(h, 'hex')),
        signed.root,
      ),
    ).toBe(true);

    const beyond = await remote(config, server.url, server.adminToken, 'prove', String(size));
    expect(beyond.status).not.toBe(0);
    expect(beyond.stderr).toBe(`error: entry ${size} is not covered by the latest checkpoint (size ${size})\n`);

    const mixed = runCli(CLI.fs, ['read', '--url', server.url, '--token', server.adminToken, '--data-dir', server.dataDir], { XDG_CONFIG_HOME: config });
    expect(mixed.status).toBe(2);
    expect(mixed.stdout).toBe('');
    expect(mixed.stderr).toBe('error: --url reads from a server: leave out --data-dir and --database-url\n');
    const noToken = runCli(CLI.fs, ['verify', '--url', server.url], { XDG_CONFIG_HOME: config, PPN_TOKEN: '' });
    expect(noToken.status).toBe(2);
    expect(noToken.stderr).toMatch(/^error: --url needs --token/);
    const tokenAlone = runCli(CLI.fs, ['verify', '--token', server.adminToken, '--data-dir', server.dataDir], { XDG_CONFIG_HOME: config });
    expect(tokenAlone.status).toBe(2);
    expect(tokenAlone.stderr).toBe('error: --token, --ledger-key, --ca and --insecure go with --url\n');
    const badKey = await remote(config, server.url, server.adminToken, 'verify', '--ledger-key', 'not-a-key');
    expect(badKey.status).toBe(2);
    expect(badKey.stderr).toBe(
      'error: --ledger-key wants a verifier key or a file holding one, such as ledger.pub: "not-a-key" is neither (no such file; a verifier key is <name>+<8 hex digits>+<base64 key>)\n',
    );
  });

  it('(g) answers that are not proofs or pages of entries are refused, naming what was wrong', async () => {
    await covered(server);
    const key = join(server.dataDir, 'ledger.pub');
    const cases: [string, (path: string, body: string) => string, string, RegExp][] = [
      [
        'a hash that is not 64 hex digits',
        (path, body) => (path.startsWith('/v1/ledger/proof/inclusion') ? body.replace(/"hashes":\["[0-9a-f]{2}/, '"hashes":["zz') : body),
        'read',
        /^error: refused: the server's answer to \/v1\/ledger\/proof\/inclusion is not a proof/,
      ],
      [
        'hashes that are not a list',
        (path, body) => (path.startsWith('/v1/ledger/proof/inclusion') ? body.replace(/"hashes":\[[^\]]*\]/, '"hashes":"none"') : body),
        'prove',
        /^error: refused: the server's answer to \/v1\/ledger\/proof\/inclusion is not a proof/,
      ],
      [
        'entries out of order',
        (path, body) => {
          if (!path.startsWith('/v1/ledger/entries')) return body;
          const page = JSON.parse(body) as { items: unknown[] };
          page.items.reverse();
          return JSON.stringify(page);
        },
        'read',
        /^error: refused: the server served a malformed or out-of-order entry after entry \d+\n$/,
      ],
      ['not a page', (path, body) => (path.startsWith('/v1/ledger/entries') ? '{"items":{}}' : body), 'verify', /is not a page of entries\n$/],
    ];
    for (const [what, rewrite, command, refusal] of cases) {
      const liar = await proxy(rewrite);
      const args = command === 'prove' ? ['prove', '1'] : [command];
      const out = await remote(configDir(), liar.url, server.adminToken, ...args, '--ledger-key', key);
      expect(out.status, what).toBe(1);
      expect(out.stdout, what).toBe('');
      expect(out.stderr, what).toMatch(refusal);
    }
  });
});
