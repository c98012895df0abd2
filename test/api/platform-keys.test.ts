/**
 * GET /v1/admin/keys on a running server, on SQLite and PostgreSQL: the platform admin sees the key
 * set the operator's `keys list --json` prints, after `keys rotate` and `keys retire` done while the
 * server runs, with the ledger key /v1/ledger/key serves; no tenant token may read it, and the answer
 * holds public keys only.
 */
import { verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseToken, rootSigningInput, type TokenBlock } from '../../src/tokens/format.js';
import { decodeBase64url, encodeBase64url, generateKeyPair, keyId, publicKeyFromRaw, rawPublicKey } from '../../src/tokens/keys.js';
import { api, CLI, runCli, startServer, within, type ServerProcess } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

interface TokenKey {
  kid: string;
  state: string;
  public_key: string;
  created_at: string;
  retired_at: string | null;
}

/** Every key name anywhere in a JSON value. */
function keyNames(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keyNames);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([name, inner]) => [name, ...keyNames(inner)]);
}

describe(`GET /v1/admin/keys (${TEST_STORE})`, () => {
  let server: ServerProcess;
  /** The platform admin's token: the rotation test mints one under the new key before it retires the old. */
  let admin: string;

  beforeAll(async () => {
    server = await startServer();
    admin = server.adminToken;
    const res = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: 'keys-co', display_name: 'Keys', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 10_000 },
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await server.stop();
  });

  const keys = (...args: string[]) => runCli(CLI.server, ['keys', ...args, '--data-dir', server.dataDir]);
  function cliList(): TokenKey[] {
    const out = keys('list', '--json');
    expect(out.status, out.stderr).toBe(0);
    return JSON.parse(out.stdout) as TokenKey[];
  }
  async function adminKeys() {
    const res = await api(server.url, 'GET', '/v1/admin/keys', { token: admin });
    expect(res.status).toBe(200);
    return res.body as { token_keys: TokenKey[]; ledger_key: { name: string; key_id: string; verifier_key: string } };
  }
  async function issue(scope: string): Promise<string> {
    const res = await api(server.url, 'POST', '/v1/tenants/keys-co/tokens', {
      token: admin,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(generateKeyPair().publicKey)), scope, expires_in_seconds: 3600 },
    });
    expect(res.status).toBe(201);
    return res.body.token as string;
  }

  it('gives the ledger key exactly as GET /v1/ledger/key serves it, with its name and key hash apart', async () => {
    const served = await fetch(`${server.url}/v1/ledger/key`);
    const line = (await served.text()).trim();
    const [name, keyHash] = line.split('+');
    expect((await adminKeys()).ledger_key).toEqual({ name, key_id: keyHash, verifier_key: line });
  });

  it('is refused to tenant tokens, even a tenant admin, and to a request with no token', async () => {
    for (const scope of ['service:tenant-admin', 'tenant:read']) {
      const res = await api(server.url, 'GET', '/v1/admin/keys', { token: await issue(scope) });
      expect(res.status, scope).toBe(403);
      expect(res.body).toMatchObject({ code: 'forbidden' });
      expect(keyNames(res.body)).not.toContain('token_keys');
    }
    expect((await api(server.url, 'GET', '/v1/admin/keys')).status).toBe(401);
  });

  it('lists the key set as "keys list --json" does, after a rotate and a retire done while the server runs', async () => {
    expect((await adminKeys()).token_keys).toEqual(cliList());

    const rotated = keys('rotate');
    expect(rotated.status, rotated.stderr).toBe(0);
    const newKid = rotated.stdout.trim();
    const oldKid = parseToken(server.adminToken)[0]!.claims.kid!;
    const seen = await within(1000, async () => (await adminKeys()).token_keys.some((k) => k.kid === newKid && k.state === 'active'));
    expect(seen, 'the rotated key was not listed as active within 1 s').not.toBeNull();
    expect((await adminKeys()).token_keys).toEqual(cliList());

    // admin.token was signed by the old key: a new one first, as an operator would.
    const minted = runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir]);
    expect(minted.status, minted.stderr).toBe(0);
    admin = minted.stdout.trim();
    const retired = keys('retire', oldKid);
    expect(retired.status, retired.stderr).toBe(0);
    const gone = await within(1000, async () => (await adminKeys()).token_keys.some((k) => k.kid === oldKid && k.state === 'retired'));
    expect(gone, 'the retired key was not listed as retired within 1 s').not.toBeNull();
    const listed = (await adminKeys()).token_keys;
    expect(listed).toEqual(cliList());
    expect(listed.map(({ kid, state }) => ({ kid, state }))).toEqual([
      { kid: oldKid, state: 'retired' },
      { kid: newKid, state: 'active' },
    ]);
  });

  it('holds public keys only: no private field, and the active key verifies a token the server signed with its kid', async () => {
    const body = await adminKeys();
    expect(keyNames(body).filter((name) => /private|sealed|secret/i.test(name))).toEqual([]);
    expect(JSON.stringify(body)).not.toMatch(/private/i);

    const active = body.token_keys.find((k) => k.state === 'active')!;
    const raw = decodeBase64url(active.public_key)!;
    expect(raw).toHaveLength(32);
    const publicKey = publicKeyFromRaw(raw);
    expect(keyId(publicKey)).toBe(active.kid);
    // The server signs new tokens with the active key (rotated above) within 1 s; its kid is in the root block.
    let root: TokenBlock | undefined;
    const signed = await within(1000, async () => {
      root = parseToken(await issue('tenant:read'))[0];
      return root!.claims.kid === active.kid;
    });
    expect(signed, 'no token signed with the listed active key within 1 s').not.toBeNull();
    expect(verify(null, rootSigningInput(root!.payload), publicKey, root!.signature)).toBe(true);
  });
});
