/**
 * A signed request whose nonce cannot be recorded is refused, not admitted: admitted, its nonce could
 * be spent again later (on SQLite after a restart, the journal having missed it). The answer is 503
 * problem+json, nothing changes, and the same signed request is admitted once the record can be
 * written again, since a refused request spends no nonce. On SQLite the nonce journal's file cannot
 * be created (a directory stands in its place); on PostgreSQL another connection holds the nonce
 * table's lock past lock_timeout.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { PERIOD_MS } from '../../src/api/nonce-journal.js';
import { splitTarget } from '../../src/httpsig/base.js';
import { signRequest } from '../../src/httpsig/sign.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { TEST_STORE, lockPostgresTable } from '../support/stores.js';
import { captureLog, type LogCapture } from '../support/log-capture.js';
import { generateKeyPair } from '../../src/tokens/keys.js';
import { expectProblem, snapshotState } from './expectations.js';

/** Makes the nonce record unwritable; returns the function that makes it writable again. */
async function blockNonceRecord(h: Harness, journalDir: string, clock: ManualClock): Promise<() => Promise<void>> {
  if (TEST_STORE === 'sqlite') {
    const file = join(journalDir, `${Math.floor(clock.now() / PERIOD_MS)}.log`);
    mkdirSync(file, { recursive: true });
    return async () => rmSync(file, { recursive: true });
  }
  return lockPostgresTable(h.dataDir, 'request_nonces');
}

describe('a nonce that cannot be recorded', () => {
  let h: Harness;
  let log: LogCapture;
  const clock = new ManualClock(Date.now());
  const journalDir = join(mkdtempSync(join(tmpdir(), 'ppn-nonces-')), 'nonces');

  beforeAll(async () => {
    log = captureLog();
    h = await startHarness({ clock, app: { nonceJournalDir: journalDir, logger: log.logger } });
    await h.createTenant('acme', { max_vms: 10, storage_quota_gb: 100 });
  });
  afterAll(async () => {
    await h.close();
    rmSync(join(journalDir, '..'), { recursive: true, force: true });
  });

  it('refuses the signed request with 503 store_unavailable and changes nothing; the same request is admitted once the record is writable', async () => {
    const holder = generateKeyPair();
    const issued = await h.request('POST', '/v1/tenants/acme/tokens', {
      token: h.adminToken,
      body: { subject_pubkey: publicKeyText(holder), scope: 'tenant:input', expires_in_seconds: 3600, proof_of_possession: true },
    });
    expect(issued.statusCode).toBe(201);
    const token = issued.json<{ token: string }>().token;
    const body = JSON.stringify({ name: 'once', disk_gb: 1 });
    const fields = signRequest({ method: 'POST', ...splitTarget('/v1/vms'), body: Buffer.from(body) }, { privateKey: holder.privateKey, clock });
    const send = () => h.request('POST', '/v1/vms', { token, headers: { ...fields, 'content-type': 'application/json' }, payload: body });

    const before = await snapshotState(h);
    const unblock = await blockNonceRecord(h, journalDir, clock);
    let refused;
    try {
      refused = await send();
    } finally {
      await unblock();
    }
    const problem = expectProblem(refused, 503);
    expect(problem).toMatchObject({ code: 'store_unavailable', type: 'urn:ppn:problem:store-unavailable' });
    expect(refused.body).not.toMatch(/EISDIR|SQLITE|postgres|LOCK|request_nonces|at .*\.js/i);
    expect(await snapshotState(h)).toEqual(before);
    // The operator's log says why: on SQLite the journal's own error, on PostgreSQL the refusal.
    const why =
      TEST_STORE === 'sqlite'
        ? { msg: expect.stringMatching(/^the nonce journal could not be written/), err: expect.objectContaining({ code: 'EISDIR' }) }
        : { msg: 'request refused', code: 'store_unavailable' };
    await expect.poll(() => log.lines()).toContainEqual(expect.objectContaining(why));

    expect((await send()).statusCode).toBe(201);
    expect(expectProblem(await send(), 401).signature_error).toBe('nonce_reused');
  });
});
