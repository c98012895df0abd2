/**
 * Rotating and retiring the platform key while a server runs (SPEC §5), on SQLite and PostgreSQL:
 * the operator's CLI changes the key set in the store, and the running server follows within 1 s,
 * without a restart. Tokens signed by the old key keep working until it is retired, then fail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseToken } from '../../src/tokens/format.js';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { api, CLI, runCli, startServer, within, type ServerProcess } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

/** The kid in a token's root block. */
const kidOf = (token: string) => parseToken(token)[0]!.claims.kid!;

describe(`key rotation on a running server (${TEST_STORE})`, () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServer();
    const res = await api(server.url, 'POST', '/v1/tenants', {
      token: server.adminToken,
      body: { tenant_id: 'rot-co', display_name: 'Rot', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 10_000 },
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await server.stop();
  });

  async function issue(adminToken: string): Promise<string> {
    const res = await api(server.url, 'POST', '/v1/tenants/rot-co/tokens', {
      token: adminToken,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(generateKeyPair().publicKey)), scope: 'tenant:read', expires_in_seconds: 3600 },
    });
    expect(res.status).toBe(201);
    return res.body.token as string;
  }

  const keys = (...args: string[]) => runCli(CLI.server, ['keys', ...args, '--data-dir', server.dataDir]);
  const status = async (token: string) => (await api(server.url, 'GET', '/v1/vms', { token })).status;

  it('signs new tokens with the rotated key within 1 s, keeps old tokens valid until the old key is retired, then refuses them within 1 s', async () => {
    const oldKid = kidOf(server.adminToken);
    const oldToken = await issue(server.adminToken);
    expect(await status(oldToken)).toBe(200);

    const rotated = keys('rotate');
    expect(rotated.status, rotated.stderr).toBe(0);
    const newKid = rotated.stdout.trim();
    const took = await within(1000, async () => kidOf(await issue(server.adminToken)) === newKid);
    expect(took, 'the server did not sign with the new key within 1 s').not.toBeNull();
    expect(await status(oldToken)).toBe(200);
    expect(await status(server.adminToken)).toBe(200);

    const refused = keys('retire', newKid);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('is the active key');

    // admin.token was signed by the old key too: the operator mints a new one before retiring it.
    const minted = runCli(CLI.server, ['admin-token', '--data-dir', server.dataDir]);
    expect(minted.status, minted.stderr).toBe(0);
    const newAdmin = minted.stdout.trim();
    expect(kidOf(newAdmin)).toBe(newKid);
    const newToken = await issue(newAdmin);

    const retired = keys('retire', oldKid);
    expect(retired.status, retired.stderr).toBe(0);
    const gone = await within(1000, async () => (await status(oldToken)) === 401);
    expect(gone, 'a token of the retired key was still accepted after 1 s').not.toBeNull();
    const res = await api(server.url, 'GET', '/v1/vms', { token: oldToken });
    expect(res.body).toMatchObject({ status: 401, token_error: 'unknown_key' });
    expect(res.body.detail).toContain(`platform key ${oldKid}, which is unknown or retired`);
    expect(await status(server.adminToken)).toBe(401);
    expect(await status(newToken)).toBe(200);
    expect(await status(newAdmin)).toBe(200);
  });
});
