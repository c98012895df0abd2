/**
 * `ppn api` (issue: a person with a token uses the API from a shell): the built CLI as a child
 * process against a real `service-vm-tenant serve` process, and against a small HTTP server in this
 * test that checks each request's RFC 9421 signature with src/httpsig/verify.ts, so the signing is
 * shown end to end over real HTTP. Keys come from `ppn keygen`.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { SignatureError } from '../../src/httpsig/error.js';
import { verifyRequestSignature } from '../../src/httpsig/verify.js';
import { api, CLI, runCli, runCliAsync, startServer, type ServerProcess } from '../support/server-process.js';

const dir = mkdtempSync(join(tmpdir(), 'ppn-api-'));

function keygen(name: string): { file: string; pub: string } {
  const file = join(dir, name);
  const result = runCli(CLI.ppn, ['keygen', '--out', file]);
  expect(result.status).toBe(0);
  return { file, pub: result.stdout.trim() };
}

describe('ppn api against the server', () => {
  let server: ServerProcess;
  let holder: { file: string; pub: string };
  let token: string;
  const ppn = (args: string[], env: Record<string, string> = {}) => runCli(CLI.ppn, ['api', ...args], env);
  const flags = () => ['--server', server.url, '--token', token, '--key', holder.file];

  beforeAll(async () => {
    server = await startServer();
    holder = keygen('holder');
    expect(
      (
        await api(server.url, 'POST', '/v1/tenants', {
          token: server.adminToken,
          body: { tenant_id: 'acme-corp', display_name: 'Acme', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
        })
      ).status,
    ).toBe(201);
    const issued = await api(server.url, 'POST', '/v1/tenants/acme-corp/tokens', {
      token: server.adminToken,
      body: { subject_pubkey: holder.pub, scope: 'tenant:input', expires_in_seconds: 3600 },
    });
    expect(issued.status).toBe(201);
    token = issued.body.token;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('GET /v1/whoami, signed, with a token that does not demand proof: prints the body', () => {
    const result = ppn(['GET', '/v1/whoami', ...flags()]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ tenant_id: 'acme-corp', subject: holder.pub, scope: ['tenant:input'] });
  });

  it('POST /v1/vms with --data creates a VM', async () => {
    const result = ppn(['post', '/v1/vms', '--data', '{"name":"web-1","vcpus":1,"memory_mb":512,"disk_gb":1}', ...flags()]);
    expect(result.status).toBe(0);
    const vm = JSON.parse(result.stdout);
    expect(vm).toMatchObject({ name: 'web-1', tenant_id: 'acme-corp' });
    const listed = await api(server.url, 'GET', '/v1/vms', { token });
    expect(listed.body.items.map((v: { vm_id: string }) => v.vm_id)).toContain(vm.vm_id);
  });

  it('takes the server, token (here a file) and key from PPN_SERVER, PPN_TOKEN and PPN_KEY', () => {
    const file = join(dir, 'holder.token');
    writeFileSync(file, `${token}\n`);
    const result = ppn(['GET', '/v1/vms?limit=1'], { PPN_SERVER: server.url, PPN_TOKEN: file, PPN_KEY: holder.file });
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).items).toHaveLength(1);
  });

  it('with a token that demands proof of possession: GET and POST work signed, and unsigned is refused naming why', async () => {
    const issued = await api(server.url, 'POST', '/v1/tenants/acme-corp/tokens', {
      token: server.adminToken,
      body: { subject_pubkey: holder.pub, scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true },
    });
    expect(issued.body).toMatchObject({ proof_of_possession: true });
    const pop = ['--server', server.url, '--token', issued.body.token];
    const whoami = ppn(['GET', '/v1/whoami', ...pop, '--key', holder.file]);
    expect(whoami.stderr).toBe('');
    expect(JSON.parse(whoami.stdout)).toMatchObject({ token_id: issued.body.token_id });
    const created = ppn(['POST', '/v1/vms?tenant_id=acme-corp', '--data', '{"name":"pop-1","disk_gb":1}', ...pop, '--key', holder.file]);
    expect(created.stderr).toBe('');
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'pop-1' });
    const unsigned = ppn(['GET', '/v1/whoami', ...pop]);
    expect(unsigned.status).toBe(1);
    expect(JSON.parse(unsigned.stdout)).toMatchObject({ status: 401, signature_error: 'signature_missing' });
    const stranger = ppn(['GET', '/v1/whoami', ...pop, '--key', keygen('pop-stranger').file]);
    expect(JSON.parse(stranger.stdout)).toMatchObject({ status: 401, signature_error: 'wrong_key' });
  });

  it('prints the problem and exits 1 on an error status', () => {
    const result = ppn(['GET', '/v1/vms/vm-00000000000000000000000000', ...flags()]);
    expect(result.status).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 404 });
    expect(result.stderr).toMatch(/^error: GET \/v1\/vms\/vm-0{26}: 404 .*not found/);
  });

  it('refuses bad arguments before sending anything', () => {
    expect(ppn(['GET', 'v1/whoami', ...flags()]).stderr).toMatch(/^error: PATH must start with "\/"/);
    expect(ppn(['POST', '/v1/vms', '--data', '{name', ...flags()]).stderr).toMatch(/^error: --data is not JSON/);
    expect(ppn(['GET', '/v1/whoami'], { PPN_SERVER: '' }).stderr).toMatch(/^error: no server: pass --server URL or set PPN_SERVER/);
  });
});

describe('ppn api signs what a verifier of RFC 9421 accepts, over real HTTP', () => {
  let verifier: Server;
  let url: string;
  let holder: { file: string; pub: string };
  let stranger: { file: string; pub: string };
  const nonces = new Set<string>();

  beforeAll(async () => {
    holder = keygen('signer');
    stranger = keygen('stranger');
    // Answers 200 with what it verified, or 401 with the SignatureError code.
    const answer = async (request: IncomingMessage, response: ServerResponse) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      const { path, query } = splitTarget(request.url!);
      try {
        const proof = await verifyRequestSignature(
          { method: request.method!, path, query, headers: request.headers, body: Buffer.concat(chunks) },
          {
            holderKey: holder.pub,
            clock: systemClock,
            acceptNonce: async (keyid, nonce) => !nonces.has(`${keyid} ${nonce}`) && Boolean(nonces.add(`${keyid} ${nonce}`)),
          },
        );
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ verified: proof, authorization: request.headers.authorization }));
      } catch (error) {
        const code = error instanceof SignatureError ? error.code : 'internal';
        response.writeHead(401, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status: 401, code, detail: (error as Error).message }));
      }
    };
    verifier = createServer((request, response) => void answer(request, response));
    verifier.listen(0, '127.0.0.1');
    await once(verifier, 'listening');
    url = `http://127.0.0.1:${(verifier.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    verifier?.close();
  });

  it('a POST with a body and a query verifies: components, digest, keyid and nonce', async () => {
    const result = await runCliAsync(CLI.ppn, [
      'api',
      'PATCH',
      '/v1/tenants/acme?force=true',
      '--data',
      '{"max_vms":3}',
      '--server',
      url,
      '--token',
      'pct1.x',
      '--key',
      holder.file,
    ]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const body = JSON.parse(result.stdout);
    expect(body.verified).toMatchObject({ label: 'sig1', keyid: holder.pub, components: ['@method', '@path', '@query', 'content-digest'] });
    expect(body.authorization).toBe('Bearer pct1.x');
  });

  it('a GET without a body verifies, each time with a fresh nonce', async () => {
    const first = await runCliAsync(CLI.ppn, ['api', 'GET', '/v1/whoami', '--server', url, '--key', holder.file]);
    const second = await runCliAsync(CLI.ppn, ['api', 'GET', '/v1/whoami', '--server', url, '--key', holder.file]);
    expect([first.status, second.status]).toEqual([0, 0]);
    expect(JSON.parse(first.stdout).verified.nonce).not.toBe(JSON.parse(second.stdout).verified.nonce);
  });

  it("is refused when signed with a key other than the holder's, and ppn exits 1 with the problem", async () => {
    const result = await runCliAsync(CLI.ppn, ['api', 'GET', '/v1/whoami', '--server', url, '--key', stranger.file]);
    expect(result.status).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'wrong_key' });
    expect(result.stderr).toMatch(/^error: GET \/v1\/whoami: 401 keyid is not the token holder's public key/);
  });

  it('is refused without a key: signature_missing', async () => {
    const result = await runCliAsync(CLI.ppn, ['api', 'GET', '/v1/whoami', '--server', url]);
    expect(result.status).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'signature_missing' });
  });
});
