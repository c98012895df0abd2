/**
 * TLS as an operator runs it (docs/operations.md, TLS): real server processes started with
 * `--tls-cert --tls-key` from certificates the test makes with openssl, and the real clients
 * (`ppn`, `service-fs --url`, `service-vm-host`) verifying them with `--ca`. Also the certificate
 * reloaded on SIGHUP under load, `--tls-client-ca` for platform-admin tokens, and `--trust-proxy`.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../../src/tls/client.js';
import { readServerTls } from '../../src/tls/server.js';
import { startHarness } from '../support/harness.js';
import { fingerprintOf, makeTestPki, type TestPki } from '../support/certificates.js';
import { ppnUser } from '../support/ppn-cli.js';
import { api, CLI, runCli, runCliAsync, serversStoppedAfterEach, startServer, tempDataDir, within, type ServerProcess } from '../support/server-process.js';

const pki: TestPki = makeTestPki();
const tlsArgs = (pair = pki.server) => ['--tls-cert', pair.cert, '--tls-key', pair.key];
const subjectKey = () => generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!;

/** A tenant and a token of it, made by the platform admin over TLS. */
async function tenantWithToken(server: ServerProcess, tenantId: string, scope: string, ca = pki.ca, client?: { cert: string; key: string }) {
  const tls = { ca, ...(client ? { cert: readFileSync(client.cert, 'utf8'), key: readFileSync(client.key, 'utf8') } : {}) };
  const call = (method: string, path: string, body: unknown) =>
    send(
      `${server.url}${path}`,
      { method, headers: { authorization: `Bearer ${server.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(body) },
      tls,
    );
  expect((await call('POST', '/v1/tenants', { tenant_id: tenantId, display_name: tenantId, api_rate_limit_rpm: 100_000 })).status).toBe(201);
  const issued = await call('POST', `/v1/tenants/${tenantId}/tokens`, { subject_pubkey: subjectKey(), scope, expires_in_seconds: 3600 });
  expect(issued.status).toBe(201);
  return ((await issued.json()) as { token: string }).token;
}

/** The SHA-256 fingerprint of the certificate a new connection to `url` is offered. */
function servedFingerprint(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((done, fail) => {
    const socket = connect({ host: hostname, port: Number(port), ca: pki.ca }, () => {
      done(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', fail);
  });
}

describe('the server and every client over TLS', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer(tempDataDir(), {}, { args: tlsArgs(), ca: pki.ca });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('ppn, service-fs --url and the agent reach the server over https, checking its certificate against --ca', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const user = ppnUser();
    user.ok('remote', 'add', 'tls', server.url, '--token', server.adminToken, '--ca', pki.caFile);
    expect(user.json('remote', 'list')).toMatchObject([{ name: 'tls', ca: resolve(pki.caFile), client_cert: '-', insecure: false }]);
    expect(user.ppn('remote', 'list').stdout).toContain(resolve(pki.caFile));
    expect(user.json('whoami')).toMatchObject({ tenant_id: null });
    expect(user.json('tenant', 'create', 'tls-corp', '--display-name', 'TLS Corp')).toMatchObject({ tenant_id: 'tls-corp' });
    expect(user.json('vm', 'list', '--tenant', 'tls-corp')).toEqual([]);

    const config = mkdtempSync(join(tmpdir(), 'ppn-xdg-'));
    const fs = (...args: string[]) => runCliAsync(CLI.fs, [...args, '--url', server.url, '--token', server.adminToken, '--ca', pki.caFile], { XDG_CONFIG_HOME: config });
    const checkpoint = await within(5000, async () => (await fs('checkpoint')).status === 0);
    expect(checkpoint, 'service-fs checkpoint over TLS').not.toBeNull();
    const verified = await fs('verify');
    expect(verified.stderr).toBe('');
    expect(verified.stdout).toMatch(/^ledger verified remotely/);

    // The agent: enroll with --ca (remembered), then one heartbeat from `run`.
    const stateDir = join(mkdtempSync(join(tmpdir(), 'ppn-host-')), 'state');
    const host = (...args: string[]) => runCliAsync(CLI.host, [...args, '--state-dir', stateDir]);
    const publicKey = (await host('init')).stdout.trim();
    const nodeToken = await api(server.url, 'POST', '/v1/tenants/tls-corp/tokens', {
      token: server.adminToken,
      ca: pki.ca,
      body: { subject_pubkey: publicKey, scope: 'node:agent', expires_in_seconds: 3600 },
    });
    expect(nodeToken.status).toBe(201);
    const enroll = await host('enroll', '--server', server.url, '--token', nodeToken.body.token, '--node-id', 'tls-node', '--ca', pki.caFile);
    expect(enroll.stderr).toMatch(/enrolled as tls-node/);
    expect(enroll.status).toBe(0);
    const agent = spawn(process.execPath, [CLI.host, 'run', '--state-dir', stateDir, '--heartbeat-interval', '1', '--accel', 'tcg'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let agentOutput = '';
    agent.stdout.on('data', (chunk: Buffer) => (agentOutput += chunk.toString()));
    agent.stderr.on('data', (chunk: Buffer) => (agentOutput += chunk.toString()));
    const stopped = new Promise((done) => agent.once('exit', done));
    // The agent logs this once the server has answered its heartbeat (src/agent/heartbeat-loop.ts).
    const heartbeat = await within(10_000, async () => agentOutput.includes('"msg":"first heartbeat answered"'));
    agent.kill('SIGTERM');
    await stopped;
    expect(heartbeat, `no heartbeat over TLS:\n${agentOutput}`).not.toBeNull();
  });

  it('a client given another CA, or none, refuses the server before sending anything', async () => {
    const user = ppnUser();
    user.ok('remote', 'add', 'wrong', server.url, '--token', server.adminToken, '--ca', pki.otherCaFile);
    const refused = user.ppn('tenant', 'create', 'never-made', '--display-name', 'Never');
    expect(refused.status).toBe(3);
    expect(refused.stderr).toMatch(/the server's certificate is not trusted \(.*\): give the CA that signed it with --ca FILE; nothing was sent/);
    // Without --ca only the system's CAs are trusted, which did not sign the test's.
    expect(user.ppn('whoami', '--remote', 'wrong', '--ca', pki.caFile).status).toBe(0);
    const system = ppnUser({ PPN_SERVER: server.url, PPN_TOKEN: server.adminToken });
    expect(system.ppn('whoami').stderr).toMatch(/certificate is not trusted/);
    expect((await api(server.url, 'GET', '/v1/tenants/never-made', { token: server.adminToken, ca: pki.ca })).status).toBe(404);

    const fs = await runCliAsync(CLI.fs, ['checkpoint', '--url', server.url, '--token', server.adminToken, '--ca', pki.otherCaFile], {
      XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'ppn-xdg-')),
    });
    expect(fs.status).toBe(1);
    expect(fs.stderr).toMatch(/certificate is not trusted/);

    const stateDir = join(mkdtempSync(join(tmpdir(), 'ppn-host-')), 'state');
    expect((await runCliAsync(CLI.host, ['init', '--state-dir', stateDir])).status).toBe(0);
    const enroll = await runCliAsync(CLI.host, [
      'enroll',
      '--server',
      server.url,
      '--token',
      'pct1.x',
      '--node-id',
      'n1',
      '--ca',
      pki.otherCaFile,
      '--state-dir',
      stateDir,
    ]);
    expect(enroll.status).toBe(1);
    expect(enroll.stderr).toMatch(/certificate is not trusted/);
    expect(existsSync(join(stateDir, 'enrollment.json'))).toBe(false);
  });
});

/** An IPv4 address of this machine that is not loopback, for plain http:// that would leave it. */
function outsideAddress(): string {
  const found = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal);
  return found?.address ?? '192.0.2.1';
}

describe('plain http:// to another machine', () => {
  const elsewhere = `http://${outsideAddress()}:1`;

  it('is refused by every client unless --insecure is given; loopback needs no flag', async () => {
    const user = ppnUser();
    const add = user.ppn('remote', 'add', 'far', elsewhere, '--token', 'pct1.x');
    expect(add.status).toBe(2);
    expect(add.stderr).toMatch(/refusing plain http:\/\/ to .*: the token would cross the network unencrypted; .* --insecure/);
    expect(user.ppn('remote', 'list', '--json').stdout).toBe('[]\n');
    user.ok('remote', 'add', 'near', 'http://localhost:1', '--token', 'pct1.x');

    const env = ppnUser({ PPN_SERVER: elsewhere, PPN_TOKEN: 'pct1.x' });
    const whoami = env.ppn('whoami');
    expect(whoami.status).toBe(2);
    expect(whoami.stderr).toMatch(/PPN_SERVER: refusing plain http:\/\//);
    // With --insecure the request is made: nothing listens there, so it cannot be reached (exit 3).
    const insecure = env.ppn('whoami', '--insecure');
    expect(insecure.stderr).toMatch(/cannot reach/);
    expect(insecure.status).toBe(3);
    user.ok('remote', 'add', 'far', elsewhere, '--token', 'pct1.x', '--insecure');
    expect(user.ppn('whoami', '--remote', 'far').status).toBe(3);

    const api = user.ppn('api', 'GET', '/v1/whoami', '--server', elsewhere);
    expect([api.status, api.stderr]).toEqual([2, expect.stringMatching(/refusing plain http/)]);

    const fs = runCli(CLI.fs, ['checkpoint', '--url', elsewhere, '--token', 'pct1.x']);
    expect([fs.status, fs.stderr]).toEqual([2, expect.stringMatching(/refusing plain http/)]);
    expect(runCli(CLI.fs, ['checkpoint', '--url', elsewhere, '--token', 'pct1.x', '--insecure']).stderr).toMatch(/cannot reach/);

    const stateDir = join(mkdtempSync(join(tmpdir(), 'ppn-host-')), 'state');
    expect(runCli(CLI.host, ['init', '--state-dir', stateDir]).status).toBe(0);
    const enroll = runCli(CLI.host, ['enroll', '--server', elsewhere, '--token', 'pct1.x', '--node-id', 'n1', '--state-dir', stateDir]);
    expect([enroll.status, enroll.stderr]).toEqual([2, expect.stringMatching(/refusing plain http/)]);
  });
});

describe('serve --tls-cert and --tls-key', () => {
  const start = serversStoppedAfterEach();

  it('refuses to start with one file of the pair, a key that is not the certificate’s, or a file it cannot read', async () => {
    const serve = (args: string[], env: Record<string, string> = {}) =>
      runCliAsync(CLI.server, ['serve', '--listen', '127.0.0.1:0', '--data-dir', tempDataDir(), ...args], env);
    // Each is refused before the server opens anything, so they may run side by side.
    const [alone, fromEnv, mismatched, missing, notPem, clientCaAlone, badProxy] = await Promise.all([
      serve(['--tls-cert', pki.server.cert]),
      serve([], { PPN_TLS_KEY: pki.server.key }),
      serve(['--tls-cert', pki.server.cert, '--tls-key', pki.client.key]),
      serve(['--tls-cert', join(pki.dir, 'nowhere.pem'), '--tls-key', pki.server.key]),
      serve(['--tls-cert', pki.server.key, '--tls-key', pki.server.key]),
      serve(['--tls-client-ca', pki.caFile]),
      serve(['--trust-proxy', '10.0.0.0/33']),
    ]);
    expect([alone.status, alone.stderr]).toEqual([2, expect.stringMatching(/--tls-cert and --tls-key .* go together: a certificate was given without its key/)]);
    expect([fromEnv.status, fromEnv.stderr]).toEqual([2, expect.stringMatching(/a key was given without its certificate/)]);
    expect([mismatched.status, mismatched.stderr]).toEqual([1, expect.stringMatching(/do not go together: .*key values mismatch/)]);
    expect([missing.status, missing.stderr]).toEqual([1, expect.stringMatching(/--tls-cert .*nowhere\.pem: no such file/)]);
    expect([notPem.status, notPem.stderr]).toEqual([1, expect.stringMatching(/holds no PEM certificate/)]);
    expect([clientCaAlone.status, clientCaAlone.stderr]).toEqual([2, expect.stringMatching(/--tls-client-ca needs --tls-cert and --tls-key/)]);
    expect([badProxy.status, badProxy.stderr]).toEqual([2, expect.stringMatching(/--trust-proxy wants IP addresses or CIDR blocks/)]);
  });

  it('takes a renewed certificate on SIGHUP: requests in flight and across the reload all succeed, and new connections get the new certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ppn-live-'));
    const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live.key') };
    copyFileSync(pki.server.cert, live.cert);
    copyFileSync(pki.server.key, live.key);
    const server = await start(undefined, { args: [...tlsArgs(live), '--log-level', 'info'], ca: pki.ca });
    expect(await servedFingerprint(server.url)).toBe(fingerprintOf(pki.server.cert));
    const renewed = pki.issueServer('server-renewed');

    const keepAlive = new https.Agent({ keepAlive: true, ca: pki.ca, maxSockets: 4 });
    const fresh = new https.Agent({ keepAlive: false, ca: pki.ca });
    const request = (agent: https.Agent) =>
      new Promise<number>((done, fail) => {
        https
          .get(`${server.url}/v1/whoami`, { agent, headers: { authorization: `Bearer ${server.adminToken}` } }, (res) => {
            res.resume();
            res.on('end', () => done(res.statusCode ?? 0));
          })
          .on('error', fail);
      });
    const statuses: number[] = [];
    let reloaded = false;
    const worker = async (agent: https.Agent) => {
      while (statuses.length < 300) {
        statuses.push(await request(agent));
        if (statuses.length >= 100 && !reloaded) {
          reloaded = true;
          copyFileSync(renewed.cert, live.cert);
          copyFileSync(renewed.key, live.key);
          server.process.kill('SIGHUP');
        }
      }
    };
    await Promise.all([worker(keepAlive), worker(keepAlive), worker(fresh), worker(fresh)]);
    keepAlive.destroy();
    expect(statuses.length).toBeGreaterThanOrEqual(300);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    const took = await within(5000, async () => (await servedFingerprint(server.url)) === fingerprintOf(renewed.cert));
    expect(took, 'new connections get the renewed certificate').not.toBeNull();
    expect(server.output()).toMatch(/reloaded the TLS certificate and key/);

    // A broken pair is logged and the certificate in use kept.
    copyFileSync(pki.client.key, live.key);
    server.process.kill('SIGHUP');
    expect(await within(5000, async () => /kept the TLS certificate in use: .*do not go together/.test(server.output()))).not.toBeNull();
    expect(await servedFingerprint(server.url)).toBe(fingerprintOf(renewed.cert));
    expect((await api(server.url, 'GET', '/v1/whoami', { token: server.adminToken, ca: pki.ca })).status).toBe(200);
  });

  it('serves the agent port (--agent-listen) with the same certificate, and reloads it there too on SIGHUP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ppn-live-'));
    const live = { cert: join(dir, 'live.pem'), key: join(dir, 'live.key') };
    copyFileSync(pki.server.cert, live.cert);
    copyFileSync(pki.server.key, live.key);
    const server = await start(undefined, { args: [...tlsArgs(live), '--agent-listen', '127.0.0.1:0', '--log-level', 'info'], ca: pki.ca });
    const said = /node agents' routes .* are also served on (https:\/\/127\.0\.0\.1:\d+)/;
    expect(await within(10_000, async () => said.test(server.output()))).not.toBeNull();
    const agentUrl = said.exec(server.output())![1]!;
    expect(await servedFingerprint(agentUrl)).toBe(fingerprintOf(pki.server.cert));
    expect((await api(agentUrl, 'GET', '/v1/version', { ca: pki.ca })).status).toBe(200);

    const renewed = pki.issueServer('server-renewed');
    copyFileSync(renewed.cert, live.cert);
    copyFileSync(renewed.key, live.key);
    server.process.kill('SIGHUP');
    expect(
      await within(5000, async () => (await servedFingerprint(agentUrl)) === fingerprintOf(renewed.cert)),
      'the agent port offers the renewed certificate',
    ).not.toBeNull();
    expect(await servedFingerprint(server.url)).toBe(fingerprintOf(renewed.cert));
    expect((await api(agentUrl, 'GET', '/v1/version', { ca: pki.ca })).status).toBe(200);
  });

  it('a server without TLS keeps serving on SIGHUP (what `systemctl reload` sends), saying there is nothing to reload', async () => {
    const server = await start(undefined, { args: ['--log-level', 'info'] });
    server.process.kill('SIGHUP');
    expect(await within(5000, async () => /SIGHUP: nothing to reload/.test(server.output()))).not.toBeNull();
    expect(server.process.exitCode).toBeNull();
    expect((await api(server.url, 'GET', '/v1/whoami', { token: server.adminToken })).status).toBe(200);
  });

  it('with --tls-client-ca, platform-admin tokens need a client certificate that CA signed; tenant tokens need none', async () => {
    const server = await start(undefined, { args: [...tlsArgs(), '--tls-client-ca', pki.caFile], ca: pki.ca });
    const without = await api(server.url, 'GET', '/v1/tenants', { token: server.adminToken, ca: pki.ca });
    expect(without.status).toBe(403);
    expect(without.body).toMatchObject({ code: 'client_certificate_required', type: 'urn:ppn:problem:client-certificate-required' });
    const withCert = (pair: { cert: string; key: string }) =>
      send(
        `${server.url}/v1/tenants`,
        { headers: { authorization: `Bearer ${server.adminToken}` } },
        { ca: pki.ca, cert: readFileSync(pair.cert, 'utf8'), key: readFileSync(pair.key, 'utf8') },
      );
    expect((await withCert(pki.client)).status).toBe(200);
    const stranger = await withCert(pki.strangerClient);
    expect([stranger.status, ((await stranger.json()) as { code: string }).code]).toEqual([403, 'client_certificate_required']);

    const tenantToken = await tenantWithToken(server, 'cert-free', 'tenant:read', pki.ca, pki.client);
    expect((await api(server.url, 'GET', '/v1/vms', { token: tenantToken, ca: pki.ca })).status).toBe(200);

    // ppn presents the remote's client certificate.
    const user = ppnUser();
    user.ok('remote', 'add', 'plain', server.url, '--token', server.adminToken, '--ca', pki.caFile);
    expect(user.ppn('tenant', 'list').stderr).toMatch(/client certificate/i);
    user.ok(
      'remote',
      'add',
      'certified',
      server.url,
      '--token',
      server.adminToken,
      '--ca',
      pki.caFile,
      '--client-cert',
      pki.client.cert,
      '--client-key',
      pki.client.key,
      '--use',
    );
    expect(user.json('tenant', 'list').map((t: { tenant_id: string }) => t.tenant_id)).toEqual(['cert-free']);
  });
});

describe('the connection cap over TLS', () => {
  it('a connection over the per-address cap is answered 429 problem+json inside TLS, which the client can read', async () => {
    const h = await startHarness({ app: { https: readServerTls({ cert: pki.server.cert, key: pki.server.key }).https, maxConnectionsPerAddress: 1 } });
    try {
      await h.app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = h.app.server.address() as { port: number };
      const open = () =>
        new Promise<TLSSocket>((done, fail) => {
          const socket = connect({ host: '127.0.0.1', port, ca: pki.ca }, () => done(socket));
          socket.on('error', fail);
        });
      const held = await open();
      const refused = await open();
      const answer = await new Promise<string>((done) => {
        let text = '';
        refused.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        refused.on('close', () => done(text));
        refused.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      held.destroy();
      expect(answer).toMatch(/^HTTP\/1\.1 429 /);
      expect(answer).toContain('"code":"too_many_connections"');
    } finally {
      await h.close();
    }
  });
});

describe('serve --trust-proxy', () => {
  const start = serversStoppedAfterEach();

  /** The address the server records for a tenant token's session, after a request claiming X-Forwarded-For 203.0.113.9. */
  async function recordedAddress(args: string[]): Promise<{ session: string; log: string }> {
    const server = await start(undefined, { args: [...args, '--log-level', 'info'] });
    const token = await tenantWithToken(server, 'proxied', 'service:tenant-admin', undefined);
    expect((await api(server.url, 'GET', '/v1/vms', { token, headers: { 'x-forwarded-for': '203.0.113.9' } })).status).toBe(200);
    let session = '';
    let line: string | undefined;
    // Sessions are written within a second, and log lines within 200 ms of their request.
    await within(3000, async () => {
      // Listed by the platform admin, whose requests are no tenant's session.
      const items = (await api(server.url, 'GET', '/v1/sessions?tenant_id=proxied', { token: server.adminToken })).body.items as { last_address: string }[];
      session = items[0]?.last_address ?? '';
      line = server
        .output()
        .split('\n')
        .filter((l) => l.includes('"route":"/v1/vms"'))
        .at(0);
      return session !== '' && line !== undefined;
    });
    return { session, log: (JSON.parse(line ?? '{}') as { remote?: string }).remote ?? '' };
  }

  it('without it, X-Forwarded-For is ignored: the client is the peer, in sessions and in the log', async () => {
    expect(await recordedAddress([])).toEqual({ session: '127.0.0.1', log: '127.0.0.1' });
  });

  it('from a peer in the list, X-Forwarded-For names the client; from a peer outside it, it is ignored', async () => {
    expect(await recordedAddress(['--trust-proxy', '127.0.0.1/32'])).toEqual({ session: '203.0.113.9', log: '203.0.113.9' });
    expect(await recordedAddress(['--trust-proxy', '10.0.0.0/8,192.168.0.1'])).toEqual({ session: '127.0.0.1', log: '127.0.0.1' });
  });
});
