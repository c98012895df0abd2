/**
 * When the store cannot take a write (another connection holds SQLite's exclusive lock past the
 * busy timeout, or PostgreSQL's table lock past lock_timeout), the API answers 503 problem+json
 * without internals, changes nothing, and works again once the store is free.
 */
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { captureLog, type LogCapture } from '../support/log-capture.js';
import { startHarness, type Harness } from '../support/harness.js';
import { TEST_STORE, lockPostgresTable } from '../support/stores.js';

/** Takes the store's write lock from another connection; returns the release function. */
async function blockWrites(dataDir: string): Promise<() => Promise<void>> {
  if (TEST_STORE === 'sqlite') {
    const blocker = new BetterSqlite3(join(dataDir, 'ppn.sqlite'));
    blocker.exec('BEGIN EXCLUSIVE');
    return async () => {
      blocker.exec('ROLLBACK');
      blocker.close();
    };
  }
  return lockPostgresTable(dataDir, 'tenants');
}

describe('store unavailable', () => {
  let harness: Harness;
  let log: LogCapture;
  beforeEach(async () => {
    log = captureLog();
    harness = await startHarness({ app: { logger: log.logger } });
  });
  afterEach(async () => {
    await harness.close();
  });

  it('answers 503 store_unavailable while another process holds the write lock, then recovers', async () => {
    const before = await harness.ledgerCount();
    const release = await blockWrites(harness.dataDir);
    try {
      const res = await harness.request('POST', '/v1/tenants', {
        token: harness.adminToken,
        headers: { 'x-request-id': 'busy-store-1' },
        body: { tenant_id: 'blocked-co', display_name: 'Blocked' },
      });
      expect(res.statusCode).toBe(503);
      // One line says who was refused, where and why.
      await expect
        .poll(() => log.linesFor('busy-store-1'))
        .toEqual([
          expect.objectContaining({
            msg: 'request refused',
            method: 'POST',
            route: '/v1/tenants',
            status: 503,
            code: 'store_unavailable',
            tenant: null,
            token_id: expect.stringMatching(/^tok-/),
          }),
        ]);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const body = res.json();
      expect(body).toMatchObject({ status: 503, code: 'store_unavailable', type: 'urn:ppn:problem:store-unavailable' });
      expect(res.body).not.toMatch(/SQLITE|sqlite|postgres|INSERT|SELECT|LOCK|at .*\.js/i);
    } finally {
      await release();
    }
    expect(await harness.ledgerCount()).toBe(before);
    const retry = await harness.request('POST', '/v1/tenants', {
      token: harness.adminToken,
      body: { tenant_id: 'blocked-co', display_name: 'Blocked' },
    });
    expect(retry.statusCode).toBe(201);
    expect(await harness.ledgerCount()).toBe(before + 1);
  });
});
