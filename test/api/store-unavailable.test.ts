/**
 * When the store cannot take a write (here: another connection holds SQLite's exclusive lock past
 * the busy timeout), the API answers 503 problem+json without internals, changes nothing, and
 * works again once the store is free.
 */
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../support/harness.js';

describe('store unavailable', () => {
  let harness: Harness;
  beforeEach(async () => {
    harness = await startHarness();
  });
  afterEach(async () => {
    await harness.close();
  });

  it('answers 503 store_unavailable while another process holds the write lock, then recovers', async () => {
    const before = await harness.ledgerCount();
    const blocker = new BetterSqlite3(join(harness.dataDir, 'ppn.sqlite'));
    blocker.exec('BEGIN EXCLUSIVE');
    try {
      const res = await harness.request('POST', '/v1/tenants', {
        token: harness.adminToken,
        body: { tenant_id: 'blocked-co', display_name: 'Blocked' },
      });
      expect(res.statusCode).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const body = res.json();
      expect(body).toMatchObject({ status: 503, code: 'store_unavailable', type: 'urn:ppn:problem:store-unavailable' });
      expect(res.body).not.toMatch(/SQLITE|sqlite|INSERT|SELECT|at .*\.js/);
    } finally {
      blocker.exec('ROLLBACK');
      blocker.close();
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
