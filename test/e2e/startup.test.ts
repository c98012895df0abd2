/**
 * A server started on a large ledger (both stores), as real processes: it answers /healthz within
 * 2 s of its port opening, says `ledger_verifying` on /readyz with its progress while its start-up check
 * runs, and turns ready once the entries added since the checkpoint it remembers (ledger.state) are
 * checked. A change planted before that checkpoint is the background scrub's to find, and turns
 * /readyz to 503 `ledger_unverified`; one planted after it fails the start-up check itself. The
 * ledgers are written straight into the tables (bench/big-ledger.ts); the 1,000,000-entry
 * figures, and the time from spawn, are bench/startup.ts's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fillBigLedger } from '../../bench/big-ledger.js';
import { dbShell, dropWorm } from '../support/db-shell.js';
import { api, serversStoppedAfterEach, tempDataDir, within, type ServerProcess } from '../support/server-process.js';
import { freshDatabaseUrl, TEST_STORE } from '../support/stores.js';

const ENTRIES = 200_000;
/** Where the checkpoint the server remembers is: the entries after it are the new tail. */
const REMEMBERED = ENTRIES - 2000;

/** Changes one stored entry's bytes (its leaf and the tree left as they were), as a database writer could. */
function plantChange(dataDir: string, index: number): void {
  dbShell(dataDir, `${dropWorm(dataDir, 'ledger_entries')} update ledger_entries set entry = replace(entry, '"ts":"', '"ts":"1') where idx = ${index};`);
}

async function bigDataDir(remember: number | undefined): Promise<string> {
  const dataDir = tempDataDir();
  await fillBigLedger(dataDir, { entries: ENTRIES, checkpointAt: [ENTRIES / 2, REMEMBERED, ENTRIES], remember, databaseUrl: await freshDatabaseUrl() });
  return dataDir;
}

describe(`start-up on a ${ENTRIES}-entry ledger (${TEST_STORE})`, { timeout: 300_000 }, () => {
  const start = serversStoppedAfterEach();

  /**
   * Starts the server without waiting for its check, and expects /healthz within 2 s of its port
   * opening. (That the port opens without waiting for the check shows in the first test: /healthz
   * answers while /readyz still says ledger_verifying. The time from spawn, which includes loading
   * Node and the keys, is bench/startup.ts's figure: on a machine shared with other work it says
   * more about the load than about the server.)
   */
  async function startAndExpectHealthy(dataDir: string, args: string[] = []): Promise<ServerProcess> {
    const server = await start(dataDir, { waitForLedgerCheck: false, args });
    const healthy = await within(2000, async () => (await api(server.url, 'GET', '/healthz')).status === 200);
    expect(healthy, `no /healthz answer within 2 s:\n${server.output()}`).not.toBeNull();
    return server;
  }

  it('with nothing remembered, checks every entry in the background: /healthz at once, ledger_verifying with progress, then ready', async () => {
    const dataDir = await bigDataDir(undefined);
    const server = await startAndExpectHealthy(dataDir);
    // Its total is known once the check has counted the entries, at its very beginning.
    let verifying = await api(server.url, 'GET', '/readyz');
    await within(2000, async () => (verifying = await api(server.url, 'GET', '/readyz')).body?.total !== 0, 20);
    expect(verifying.status).toBe(503);
    expect(verifying.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(verifying.body).toMatchObject({ status: 503, code: 'ledger_verifying', total: ENTRIES });
    expect(verifying.body.checked).toBeGreaterThanOrEqual(0);
    expect(verifying.body.checked).toBeLessThan(ENTRIES);
    const ready = await within(120_000, async () => (await api(server.url, 'GET', '/readyz')).status === 200, 100);
    expect(ready, server.output()).not.toBeNull();
    // Trusted on first use, and remembered: the next start checks only what is added after it.
    // The server's log is written in batches (up to LOG_FLUSH_MS late): wait for the line.
    expect(await within(2000, async () => server.output().includes('no ledger.state: trusting the stored ledger on first use')), server.output()).not.toBeNull();
  });

  it('a change deep in the remembered history: ready once the new tail checks, then the scrub finds it and /readyz turns 503', async () => {
    const dataDir = await bigDataDir(REMEMBERED);
    const planted = Math.floor(ENTRIES * 0.75);
    plantChange(dataDir, planted);
    // At 50,000 entries a second the scrub reaches the change no sooner than 3 s after it starts.
    const server = await startAndExpectHealthy(dataDir, ['--scrub-rate', '50000']);
    const ready = await within(60_000, async () => (await api(server.url, 'GET', '/readyz')).status === 200, 20);
    expect(ready, server.output()).not.toBeNull();
    // Served while the scrub runs (the admin token of a new directory is written once the check passes).
    const token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const write = await api(server.url, 'POST', '/v1/tenants', { token, body: { tenant_id: 'while-scrubbing', display_name: 'W' } });
    expect(write.status).toBe(201);

    let answer = await api(server.url, 'GET', '/readyz');
    const found = await within(120_000, async () => (answer = await api(server.url, 'GET', '/readyz')).status === 503, 100);
    expect(found, server.output()).not.toBeNull();
    expect(answer.body).toMatchObject({ code: 'ledger_unverified', bad_index: planted });
    expect(answer.body.detail).toContain(`entry ${planted}'s bytes do not match its leaf hash`);
    const refused = await api(server.url, 'GET', '/v1/tenants', { token });
    expect(refused.body).toMatchObject({ code: 'ledger_unverified', bad_index: planted });
    // The server's log is written in batches (up to LOG_FLUSH_MS late): wait for the line.
    expect(await within(2000, async () => server.output().includes('the background scrub found a difference')), server.output()).not.toBeNull();
  });

  it('a change in the new tail fails the start-up check: never ready', async () => {
    const dataDir = await bigDataDir(REMEMBERED);
    const planted = REMEMBERED + 500;
    plantChange(dataDir, planted);
    const server = await startAndExpectHealthy(dataDir);
    let answer = await api(server.url, 'GET', '/readyz');
    const ended = await within(60_000, async () => (answer = await api(server.url, 'GET', '/readyz')).body?.code !== 'ledger_verifying', 20);
    expect(ended, server.output()).not.toBeNull();
    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ code: 'ledger_unverified', bad_index: planted });
    expect(server.output()).not.toContain('the background scrub');
  });
});
