/**
 * Key rotation across replicas (SPEC §5): the key set lives in the shared database, so a rotation
 * made with the CLI on replica A's data directory reaches replica B within 1 s without a restart;
 * a token signed by the old key works on both until that key is retired, then fails on both within
 * 1 s. Replica C polls once a minute: only the PostgreSQL notification can bring it the change in time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseToken } from '../../src/tokens/format.js';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { api, CLI, replicaDataDir, runCli, startServer, within, type ServerProcess } from '../support/server-process.js';

/** The kid in a token's root block. */
const kidOf = (token: string) => parseToken(token)[0]!.claims.kid!;

describe('key rotation across replicas', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let c: ServerProcess;

  beforeAll(async () => {
    a = await startServer();
    b = await startServer(replicaDataDir(a.dataDir));
    c = await startServer(replicaDataDir(a.dataDir), { PPN_REVOCATION_POLL_MS: '60000' });
    const res = await api(a.url, 'POST', '/v1/tenants', {
      token: a.adminToken,
      body: { tenant_id: 'key-co', display_name: 'Key', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 10_000 },
    });
    expect(res.status).toBe(201);
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop(), c.stop()]);
  });

  async function issueOn(server: ServerProcess, adminToken: string): Promise<string> {
    const res = await api(server.url, 'POST', '/v1/tenants/key-co/tokens', {
      token: adminToken,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(generateKeyPair().publicKey)), scope: 'tenant:read', expires_in_seconds: 3600 },
    });
    expect(res.status).toBe(201);
    return res.body.token as string;
  }
  const status = async (server: ServerProcess, token: string) => (await api(server.url, 'GET', '/v1/vms', { token })).status;
  const keys = (...args: string[]) => runCli(CLI.server, ['keys', ...args, '--data-dir', a.dataDir]);

  it("a rotation on A's data directory reaches B within 1 s; the old key's tokens work on both until it is retired, then fail on both within 1 s", async () => {
    const oldKid = kidOf(a.adminToken);
    const oldToken = await issueOn(a, a.adminToken);
    for (const server of [a, b, c]) expect(await status(server, oldToken)).toBe(200);

    const rotated = keys('rotate');
    expect(rotated.status, rotated.stderr).toBe(0);
    const newKid = rotated.stdout.trim();
    for (const server of [b, c]) {
      const took = await within(1000, async () => kidOf(await issueOn(server, a.adminToken)) === newKid);
      expect(took, `${server === b ? 'B' : 'C'} did not sign with the new key within 1 s`).not.toBeNull();
    }
    for (const server of [a, b, c]) expect(await status(server, oldToken)).toBe(200);

    const minted = runCli(CLI.server, ['admin-token', '--data-dir', a.dataDir]);
    expect(minted.status, minted.stderr).toBe(0);
    const newToken = await issueOn(b, minted.stdout.trim());

    expect(keys('retire', oldKid).status).toBe(0);
    for (const server of [a, b, c]) {
      const took = await within(1000, async () => (await status(server, oldToken)) === 401);
      expect(took, `a replica still accepted the retired key's token after 1 s`).not.toBeNull();
      expect((await api(server.url, 'GET', '/v1/vms', { token: oldToken })).body.token_error).toBe('unknown_key');
      expect(await status(server, newToken)).toBe(200);
    }
  });
});
