/**
 * A request signature's nonce is accepted once across replicas (SPEC §5: "on any replica"): replicas
 * share the request_nonces table, so a signed request replayed to another replica is refused. Two
 * real server processes on one PostgreSQL database, over real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import { encodeBase64url, generateKeyPair, rawPublicKey, type KeyPair } from '../../src/tokens/keys.js';
import { api, replicaDataDir, startServer, within, type ServerProcess } from '../support/server-process.js';

describe('request-signature nonces across replicas', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let holder: KeyPair;
  let token: string;

  beforeAll(async () => {
    a = await startServer();
    b = await startServer(replicaDataDir(a.dataDir));
    const tenant = await api(a.url, 'POST', '/v1/tenants', {
      token: a.adminToken,
      body: { tenant_id: 'pop-co', display_name: 'Pop', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 10_000 },
    });
    expect(tenant.status).toBe(201);
    holder = generateKeyPair();
    const issued = await api(a.url, 'POST', '/v1/tenants/pop-co/tokens', {
      token: a.adminToken,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(holder.publicKey)), scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true },
    });
    expect(issued.status).toBe(201);
    token = issued.body.token;
  });
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  /** Sends one request with exactly these signature fields. */
  async function send(base: string, method: string, path: string, fields: Record<string, string>, body?: string) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...fields, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  function sign(method: string, path: string, body?: string): Record<string, string> {
    return signRequest({ method, ...splitTarget(path), body: body === undefined ? undefined : Buffer.from(body) }, { privateKey: holder.privateKey, clock: systemClock });
  }

  it('a signed GET accepted by replica A is refused when replayed to replica B, and the reverse', async () => {
    const fields = sign('GET', '/v1/vms');
    expect((await send(a.url, 'GET', '/v1/vms', fields)).status).toBe(200);
    expect(await send(b.url, 'GET', '/v1/vms', fields)).toMatchObject({ status: 401, body: { code: 'unauthenticated', signature_error: 'nonce_reused' } });

    const other = sign('GET', '/v1/vms');
    expect((await send(b.url, 'GET', '/v1/vms', other)).status).toBe(200);
    expect(await send(a.url, 'GET', '/v1/vms', other)).toMatchObject({ status: 401, body: { signature_error: 'nonce_reused' } });
  });

  it('a signed POST that created a VM on replica A creates nothing when replayed to replica B', async () => {
    const body = JSON.stringify({ name: 'replayed', disk_gb: 1 });
    const fields = sign('POST', '/v1/vms', body);
    expect((await send(a.url, 'POST', '/v1/vms', fields, body)).status).toBe(201);
    expect(await send(b.url, 'POST', '/v1/vms', fields, body)).toMatchObject({ status: 401, body: { signature_error: 'nonce_reused' } });
    const listed = await send(b.url, 'GET', '/v1/vms', sign('GET', '/v1/vms'));
    expect((listed.body.items as { name: string }[]).filter((vm) => vm.name === 'replayed')).toHaveLength(1);
  });

  it('the same signed request sent to both replicas at once is admitted by exactly one', async () => {
    const fields = sign('GET', '/v1/whoami');
    const answers = await Promise.all([send(a.url, 'GET', '/v1/whoami', fields), send(b.url, 'GET', '/v1/whoami', fields)]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 401]);
  });

  it('the leader alone sweeps expired nonces (request-nonces-sweep, every 5 s)', async () => {
    const runs = async (server: ServerProcess) => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(/^ppn_background_runs_total\{job="request-nonces-sweep"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    const roleOf = async (server: ServerProcess) => (await api(server.url, 'GET', '/readyz')).body.background as string;
    expect(await within(5000, async () => (await roleOf(a)) === 'leader' || (await roleOf(b)) === 'leader')).not.toBeNull();
    const roles = [await roleOf(a), await roleOf(b)];
    const [leader, standby] = roles[0] === 'leader' ? [a, b] : [b, a];
    expect(await within(7000, async () => (await runs(leader)) > 0)).not.toBeNull();
    expect(await runs(standby)).toBe(0);
  });
});
