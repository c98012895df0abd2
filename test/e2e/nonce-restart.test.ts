/**
 * A signed request's nonce stays spent across a restart (SPEC §5: accepted once within the window).
 * An attacker who captured a signed request replays it to the server after `kill -9` and a restart,
 * and after a clean stop and a start: both are refused, and a fresh signature is admitted. Real
 * server processes over real HTTP, on a real data directory (on SQLite the nonce journal in it, on
 * PostgreSQL the shared table).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import { encodeBase64url, generateKeyPair, rawPublicKey } from '../../src/tokens/keys.js';
import { api, serversStoppedAfterEach, type ServerProcess } from '../support/server-process.js';

describe('request-signature nonces across restarts', () => {
  const start = serversStoppedAfterEach();

  it('a signed request accepted before kill -9, or before a clean stop, is refused when replayed after the restart', async () => {
    const first = await start();
    const tenant = await api(first.url, 'POST', '/v1/tenants', {
      token: first.adminToken,
      body: { tenant_id: 'replay-co', display_name: 'Replay', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 10_000 },
    });
    expect(tenant.status).toBe(201);
    const holder = generateKeyPair();
    const issued = await api(first.url, 'POST', '/v1/tenants/replay-co/tokens', {
      token: first.adminToken,
      body: { subject_pubkey: encodeBase64url(rawPublicKey(holder.publicKey)), scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true },
    });
    expect(issued.status).toBe(201);
    const token = issued.body.token as string;

    const sign = (method: string, path: string, body?: string) =>
      signRequest({ method, ...splitTarget(path), body: body === undefined ? undefined : Buffer.from(body) }, { privateKey: holder.privateKey, clock: systemClock });
    const send = async (server: ServerProcess, method: string, path: string, fields: Record<string, string>, body?: string) => {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...fields, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body } : {}),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const refusedAsReplay = { status: 401, body: { code: 'unauthenticated', signature_error: 'nonce_reused' } };

    // Captured: a create (which would make a second VM if replayed) and a read.
    const createBody = JSON.stringify({ name: 'once', disk_gb: 1 });
    const create = sign('POST', '/v1/vms', createBody);
    expect((await send(first, 'POST', '/v1/vms', create, createBody)).status).toBe(201);
    const read = sign('GET', '/v1/vms');
    expect((await send(first, 'GET', '/v1/vms', read)).status).toBe(200);
    expect(await send(first, 'GET', '/v1/vms', read)).toMatchObject(refusedAsReplay);

    await first.kill9();
    const second = await start(first.dataDir);
    expect(await send(second, 'POST', '/v1/vms', create, createBody)).toMatchObject(refusedAsReplay);
    expect(await send(second, 'GET', '/v1/vms', read)).toMatchObject(refusedAsReplay);
    const listed = await send(second, 'GET', '/v1/vms', sign('GET', '/v1/vms'));
    expect(listed.status).toBe(200);
    expect((listed.body.items as { name: string }[]).filter((vm) => vm.name === 'once')).toHaveLength(1);

    // Accepted by the second server, then a clean stop and a third start.
    const whoami = sign('GET', '/v1/whoami');
    expect((await send(second, 'GET', '/v1/whoami', whoami)).status).toBe(200);
    expect(await second.stop()).toBe(0);
    const third = await start(first.dataDir);
    expect(await send(third, 'GET', '/v1/whoami', whoami)).toMatchObject(refusedAsReplay);
    expect(await send(third, 'POST', '/v1/vms', create, createBody)).toMatchObject(refusedAsReplay);
    expect((await send(third, 'GET', '/v1/whoami', sign('GET', '/v1/whoami'))).status).toBe(200);

    // On SQLite the nonces are journalled in the data directory; on PostgreSQL they are the shared table's.
    const onPostgres = existsSync(join(first.dataDir, 'database.url'));
    expect(existsSync(join(first.dataDir, 'nonces'))).toBe(!onPostgres);
  });
});
