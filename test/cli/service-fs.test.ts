/**
 * The command-line tools as an operator runs them: the built `service-fs read` (SPEC §8) over a data
 * directory written by the real app, `ppn keygen` and `service-vm-tenant admin-token` (SPEC §2).
 * Each run is a real child process; usage errors must be one clear line on stderr, never a stack.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { encodeBase64url, rawPublicKey } from '../../src/tokens/keys.js';
import { startHarness, type Harness } from '../support/harness.js';
import { api, CLI, readLedgerJson, runCli, startServer, type ServerProcess } from '../support/server-process.js';

const T0 = Date.parse('2026-02-01T00:00:00Z');
const HOUR = 3600_000;
const at = (hours: number) => new Date(T0 + hours * HOUR).toISOString();

interface Entry {
  index: number;
  ts: string;
  event_type: string;
  tenant_id: string | null;
  actor: { token_id: string | null; subject: string | null; scope: string[] };
  subject_ids: Record<string, string>;
  data: Record<string, unknown>;
}

/** A usage error: non-zero exit, nothing on stdout, one clear message on stderr and no stack trace. */
function expectUsageError(result: ReturnType<typeof runCli>, message: RegExp | string): void {
  expect(result.status).not.toBe(0);
  expect(result.stdout).toBe('');
  expect(result.stderr).toMatch(/^error: /);
  if (typeof message === 'string') expect(result.stderr).toContain(message);
  else expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/^\s+at /m);
  expect(result.stderr).not.toMatch(/node:internal|\.js:\d+/);
}

describe('service-fs read', () => {
  let h: Harness;
  let clock: ManualClock;
  let adminTokenId: string;
  let acmeToken: { token: string; tokenId: string };
  let vmA: string;
  let vmB: string;
  let vmG: string;
  let rows: { idx: number; entry: string }[];

  const read = (...args: string[]) => runCli(CLI.fs, ['read', '--data-dir', h.dataDir, ...args]);
  const readJson = (...args: string[]): Entry[] => readLedgerJson<Entry>(h.dataDir, ...args);
  const indexes = (entries: Entry[]) => entries.map((e) => e.index);

  // A small history, one event per hour, so time filters have exact answers:
  //   0h admin token issued · 1h tenants acme and globex · 2h acme token issued
  //   3h two VMs created with the acme token · 4h a globex VM · 5h acme token revoked · 6h VM stopped by the admin
  beforeAll(async () => {
    clock = new ManualClock(T0);
    h = await startHarness({ clock });
    adminTokenId = (await h.request('GET', '/v1/whoami', { token: h.adminToken })).json().token_id;
    clock.advance(HOUR);
    await h.createTenant('acme', { display_name: 'Acme "Ünïcode" Corp ✓' });
    await h.createTenant('globex');
    clock.advance(HOUR);
    acmeToken = await h.issueToken('acme', 'tenant:input', 86400);
    clock.advance(HOUR);
    vmA = (await h.request('POST', '/v1/vms', { token: acmeToken.token, body: { name: 'web-a' } })).json().vm_id;
    vmB = (await h.request('POST', '/v1/vms', { token: acmeToken.token, body: { name: 'web-b' } })).json().vm_id;
    clock.advance(HOUR);
    vmG = (await h.request('POST', '/v1/vms?tenant_id=globex', { token: h.adminToken, body: { name: 'web-g' } })).json().vm_id;
    clock.advance(HOUR);
    expect((await h.request('DELETE', `/v1/tenants/acme/tokens/${acmeToken.tokenId}`, { token: h.adminToken })).statusCode).toBe(200);
    clock.advance(HOUR);
    expect((await h.request('POST', `/v1/vms/${vmA}/stop`, { token: h.adminToken })).statusCode).toBe(200);
    rows = await h.store.db.selectFrom('ledger_entries').select(['idx', 'entry']).orderBy('idx').execute();
    expect(rows).toHaveLength(9);
  });
  afterAll(async () => {
    await h.close();
  });

  it('--json prints every entry as its stored bytes, one per line, oldest first', () => {
    const out = read('--json');
    expect(out.status).toBe(0);
    expect(out.stdout).toBe(rows.map((r) => `${r.entry}\n`).join(''));
    expect(out.stdout).toContain('Acme \\"Ünïcode\\" Corp ✓');
  });

  it('prints one human-readable line per entry with index, time, event type, tenant and actor', () => {
    const out = read();
    expect(out.status).toBe(0);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(rows.length);
    lines.forEach((line, i) => {
      const entry = JSON.parse(rows[i]!.entry) as Entry;
      const actor = entry.actor.token_id ?? entry.actor.subject;
      expect(line.startsWith(`#${entry.index} ${entry.ts} ${entry.event_type} tenant=${entry.tenant_id ?? '-'} actor=${actor}`)).toBe(true);
    });
    expect(lines[0]).toMatch(/^#0 2026-02-01T00:00:00\.000Z TOKEN_ISSUED tenant=- actor=local-operator /);
    expect(lines[4]).toMatch(new RegExp(`^#4 2026-02-01T03:00:00\\.000Z VM_CREATED tenant=acme actor=${acmeToken.tokenId} vm=${vmA} `));
  });

  it('--filter tenant-id= keeps only that tenant', () => {
    const entries = readJson('--filter', 'tenant-id=acme');
    expect(entries.map((e) => e.event_type)).toEqual(['TENANT_CREATED', 'TOKEN_ISSUED', 'VM_CREATED', 'VM_CREATED', 'TOKEN_REVOKED', 'VM_STATE_CHANGED']);
    expect(entries.every((e) => e.tenant_id === 'acme')).toBe(true);
    expect(readJson('--filter', 'tenant-id=globex').map((e) => e.event_type)).toEqual(['TENANT_CREATED', 'VM_CREATED']);
    expect(readJson('--filter', 'tenant-id=nobody')).toEqual([]);
  });

  it('--filter vm-id= keeps the entries about that VM', () => {
    const entries = readJson('--filter', `vm-id=${vmA}`);
    expect(entries.map((e) => e.event_type)).toEqual(['VM_CREATED', 'VM_STATE_CHANGED']);
    expect(entries.every((e) => e.subject_ids.vm_id === vmA)).toBe(true);
    expect(readJson('--filter', `vm-id=${vmG}`).map((e) => e.data.name)).toEqual(['web-g']);
  });

  it('--filter token-id= matches entries about the token and entries made with it', () => {
    const entries = readJson('--filter', `token-id=${acmeToken.tokenId}`);
    expect(entries.map((e) => e.event_type)).toEqual(['TOKEN_ISSUED', 'VM_CREATED', 'VM_CREATED', 'TOKEN_REVOKED']);
    expect(entries.map((e) => e.subject_ids.vm_id ?? null)).toEqual([null, vmA, vmB, null]);
    // The admin token issued itself nothing before the server ran, but made every tenant-level change.
    const byAdmin = readJson('--filter', `token-id=${adminTokenId}`);
    expect(byAdmin.map((e) => e.event_type)).toEqual([
      'TOKEN_ISSUED',
      'TENANT_CREATED',
      'TENANT_CREATED',
      'TOKEN_ISSUED',
      'VM_CREATED',
      'TOKEN_REVOKED',
      'VM_STATE_CHANGED',
    ]);
  });

  it('combines filters and --event-type: every condition must hold', () => {
    expect(indexes(readJson('--filter', 'tenant-id=acme', '--event-type', 'VM_CREATED'))).toEqual([4, 5]);
    expect(readJson('--filter', 'tenant-id=acme', '--filter', `vm-id=${vmG}`)).toEqual([]);
    expect(readJson('--filter', `token-id=${acmeToken.tokenId}`, '--event-type', 'TOKEN_REVOKED').map((e) => e.ts)).toEqual([at(5)]);
    expect(readJson('--event-type', 'TENANT_CREATED').map((e) => e.tenant_id)).toEqual(['acme', 'globex']);
    expect(readJson('--event-type', 'NODE_ENROLLED')).toEqual([]);
    // Enumerated values are taken in any case.
    expect(readJson('--event-type', 'tenant_created').map((e) => e.tenant_id)).toEqual(['acme', 'globex']);
  });

  it('--since is inclusive and --until exclusive, and any RFC 3339 offset means the same instant', () => {
    expect(indexes(readJson('--since', at(3)))).toEqual([4, 5, 6, 7, 8]);
    expect(indexes(readJson('--until', at(3)))).toEqual([0, 1, 2, 3]);
    expect(indexes(readJson('--since', at(3), '--until', at(5)))).toEqual([4, 5, 6]);
    expect(indexes(readJson('--since', '2026-02-01T04:00:00+01:00', '--until', '2026-02-01T03:00:00-02:00'))).toEqual([4, 5, 6]);
    expect(indexes(readJson('--since', at(2.5), '--until', at(3.5)))).toEqual([4, 5]);
    expect(readJson('--since', at(7))).toEqual([]);
  });

  it('--limit returns the oldest N matches', () => {
    expect(indexes(readJson('--limit', '1'))).toEqual([0]);
    expect(indexes(readJson('--limit', '3', '--filter', 'tenant-id=acme'))).toEqual([1, 3, 4]);
    expect(indexes(readJson('--limit', '100'))).toEqual(rows.map((r) => r.idx));
    const human = read('--limit', '2', '--event-type', 'VM_CREATED');
    expect(
      human.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.split(' ')[0]),
    ).toEqual(['#4', '#5']);
  });

  it('reads the data directory from PPN_DATA_DIR when --data-dir is absent', () => {
    const out = runCli(CLI.fs, ['read', '--json', '--limit', '1'], { PPN_DATA_DIR: h.dataDir });
    expect(out.status).toBe(0);
    expect(out.stdout).toBe(`${rows[0]!.entry}\n`);
  });

  describe('bad usage exits non-zero with one clear message and no stack trace', () => {
    it('an unknown filter key', () => {
      expectUsageError(read('--filter', 'foo=bar'), /--filter wants KEY=VALUE with KEY one of tenant-id, vm-id, node-id, token-id; got "foo=bar"/);
    });
    it('a filter without a value or without "="', () => {
      expectUsageError(read('--filter', 'tenant-id='), 'got "tenant-id="');
      expectUsageError(read('--filter', 'tenant-id'), 'got "tenant-id"');
      expectUsageError(read('--filter', '=acme'), 'got "=acme"');
    });
    it('an unknown event type, listing the valid ones', () => {
      expectUsageError(read('--event-type', 'NOPE'), /--event-type must be one of TENANT_CREATED, .*VM_CREATED, /);
      expectUsageError(read('--event-type', 'tenant-created'), /--event-type must be one of TENANT_CREATED, /);
    });
    it('a time that is not RFC 3339', () => {
      expectUsageError(read('--since', 'yesterday'), /--since wants an RFC 3339 time .*; got "yesterday"/);
      expectUsageError(read('--until', '2026-13-45T00:00:00Z'), /--until wants an RFC 3339 time/);
      expectUsageError(read('--since', '1700000000'), /--since wants an RFC 3339 time/);
    });
    it('a limit that is not a whole number from 1', () => {
      for (const bad of ['0', '-1', '1.5', 'ten', '']) expectUsageError(read('--limit', bad), '--limit must be a whole number from 1');
    });
    it('an unknown option', () => {
      expectUsageError(read('--tenant', 'acme'), /unknown option '--tenant'/);
    });
  });

  it('a missing or empty data directory is a clear error, and service-fs creates nothing there', () => {
    const parent = mkdtempSync(join(tmpdir(), 'ppn-missing-'));
    const missing = join(parent, 'nowhere');
    expectUsageError(runCli(CLI.fs, ['read', '--data-dir', missing]), /no ledger at .*nowhere.*ppn\.sqlite: is --data-dir \(or PPN_DATA_DIR\) right\?/);
    expectUsageError(runCli(CLI.fs, ['read'], { PPN_DATA_DIR: missing }), 'no ledger at');
    expect(existsSync(missing)).toBe(false);
    const empty = join(parent, 'empty');
    mkdirSync(empty);
    expectUsageError(runCli(CLI.fs, ['read', '--data-dir', empty, '--json']), 'no ledger at');
    expect(readdirSync(empty)).toEqual([]);
  });
});

describe('service-fs read past one page of the store', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant('full', { max_vms: 0 });
    const { token } = await h.issueToken('full', 'tenant:input');
    // Every refused create writes one VM_CREATE_DENIED entry.
    for (let i = 0; i < 1205; i++) {
      const res = await h.request('POST', '/v1/vms', { token, body: { name: `vm-${i}` } });
      if (res.statusCode !== 429) throw new Error(`create ${i}: ${res.statusCode} ${res.body}`);
    }
  });
  afterAll(async () => {
    await h.close();
  });

  it('returns exactly --limit entries, in index order, when they span several reads', () => {
    const out = runCli(CLI.fs, ['read', '--data-dir', h.dataDir, '--json', '--event-type', 'VM_CREATE_DENIED', '--limit', '1100']);
    expect(out.status).toBe(0);
    const entries = out.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Entry);
    expect(entries).toHaveLength(1100);
    const first = entries[0]!.index;
    expect(entries.map((e) => e.index)).toEqual(entries.map((_, i) => first + i));
    expect(entries.map((e) => e.data.name)).toEqual(entries.map((_, i) => `vm-${i}`));

    const all = runCli(CLI.fs, ['read', '--data-dir', h.dataDir, '--json', '--filter', 'tenant-id=full', '--limit', '5000']);
    expect(all.stdout.trimEnd().split('\n')).toHaveLength(1 + 1 + 1205);
  });

  it('stops quietly when its reader goes away (service-fs read | head -1)', async () => {
    const child = spawn(process.execPath, [CLI.fs, 'read', '--data-dir', h.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const firstChunk = await new Promise<string>((done) => child.stdout.once('data', (chunk: Buffer) => done(chunk.toString())));
    child.stdout.destroy();
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    expect(firstChunk).toMatch(/^#0 /);
    expect(stderr).toBe('');
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });
});

describe('ppn keygen', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ppn-keygen-'));
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant('acme');
  });
  afterAll(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the private key (0600) and KEY.pub, and prints the 43-character base64url public key', () => {
    const out = join(dir, 'holder.key');
    const result = runCli(CLI.ppn, ['keygen', '--out', out]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('');
    const printed = result.stdout.trim();
    expect(result.stdout).toBe(`${printed}\n`);
    expect(printed).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${out}.pub`, 'utf8')).toBe(`${printed}\n`);

    // The file holds the Ed25519 private key of exactly the printed public key.
    const privateKey = createPrivateKey(readFileSync(out, 'utf8'));
    expect(privateKey.asymmetricKeyType).toBe('ed25519');
    expect(encodeBase64url(rawPublicKey(createPublicKey(privateKey)))).toBe(printed);
  });

  it('prints the public key in the form subject_pubkey takes', async () => {
    const out = join(dir, 'tenant-admin.key');
    const printed = runCli(CLI.ppn, ['keygen', '--out', out]).stdout.trim();
    const res = await h.request('POST', '/v1/tenants/acme/tokens', {
      token: h.adminToken,
      body: { subject_pubkey: printed, scope: 'service:tenant-admin', expires_in_seconds: 3600 },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().subject_pubkey).toBe(printed);
  });

  it('refuses to overwrite an existing key without --force, and leaves both files alone', () => {
    const out = join(dir, 'keep.key');
    expect(runCli(CLI.ppn, ['keygen', '--out', out]).status).toBe(0);
    const before = [readFileSync(out, 'utf8'), readFileSync(`${out}.pub`, 'utf8')];
    const again = runCli(CLI.ppn, ['keygen', '--out', out]);
    expectUsageError(again, `${out} exists; pass --force to overwrite it`);
    expect([readFileSync(out, 'utf8'), readFileSync(`${out}.pub`, 'utf8')]).toEqual(before);
  });

  it('overwrites with --force, and the new file is 0600 even if the old one was not', () => {
    const out = join(dir, 'replace.key');
    const first = runCli(CLI.ppn, ['keygen', '--out', out]).stdout.trim();
    chmodSync(out, 0o644);
    const second = runCli(CLI.ppn, ['keygen', '--out', out, '--force']);
    expect(second.status).toBe(0);
    const printed = second.stdout.trim();
    expect(printed).not.toBe(first);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${out}.pub`, 'utf8')).toBe(`${printed}\n`);
    expect(encodeBase64url(rawPublicKey(createPublicKey(createPrivateKey(readFileSync(out, 'utf8')))))).toBe(printed);
  });

  it('needs --out', () => {
    const result = runCli(CLI.ppn, ['keygen']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/required option '--out <file>' not specified/);
  });
});

describe('service-vm-tenant admin-token', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('prints a fresh platform-admin token that works against the running API', async () => {
    const result = runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('');
    const token = result.stdout.trim();
    expect(result.stdout).toBe(`${token}\n`);
    expect(token).toMatch(/^pct1\./);
    expect(token).not.toBe(server.adminToken);

    const whoami = await api(server.url, 'GET', '/v1/whoami', { token });
    expect(whoami.status).toBe(200);
    expect(whoami.body).toMatchObject({ tenant_id: null, scope: ['service:platform-admin'] });
    const created = await api(server.url, 'POST', '/v1/tenants', { token, body: { tenant_id: 'minted', display_name: 'Minted' } });
    expect(created.status).toBe(201);

    // Its issue is in the ledger, made by the local operator, and the tenant creation names it.
    const issued = runCli(CLI.fs, ['read', '--data-dir', server.dataDir, '--json', '--filter', `token-id=${whoami.body.token_id}`]);
    const entries = issued.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Entry);
    expect(entries.map((e) => e.event_type)).toEqual(['TOKEN_ISSUED', 'TENANT_CREATED']);
    expect(entries[0]!.actor).toEqual({ token_id: null, subject: 'local-operator', scope: ['service:platform-admin'] });
    expect(entries[1]!.actor.token_id).toBe(whoami.body.token_id);
  });

  it('honours --expires-in and PPN_DATA_DIR', async () => {
    const before = Date.now();
    const result = runCli(CLI.server, ['admin-token', '--expires-in', '120'], { PPN_DATA_DIR: server.dataDir });
    expect(result.status).toBe(0);
    const whoami = await api(server.url, 'GET', '/v1/whoami', { token: result.stdout.trim() });
    expect(whoami.status).toBe(200);
    const expires = Date.parse(whoami.body.expires_at);
    expect(expires).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 120_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 120_000);
  });

  it('fails clearly, creating nothing, when the data directory does not exist', () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'ppn-missing-')), 'nowhere');
    expectUsageError(runCli(CLI.server, ['admin-token', '--data-dir', missing]), /no data directory at .*nowhere: run "service-vm-tenant serve" once/);
    expect(existsSync(missing)).toBe(false);
  });

  it('refuses a lifetime outside 1 s to 90 days', () => {
    for (const bad of ['0', String(90 * 24 * 3600 + 1), 'soon']) {
      expectUsageError(runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir, '--expires-in', bad]), '--expires-in must be a whole number from 1 to 7776000');
    }
  });
});
