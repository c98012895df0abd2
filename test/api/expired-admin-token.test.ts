/**
 * An expired platform-admin token cannot be renewed through the API, so its 401 says how to get a
 * new one; an expired tenant token's does not (its admin issues another through the API).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { startHarness, type Harness } from '../support/harness.js';
import { expectProblem } from './expectations.js';

describe('an expired token', () => {
  let h: Harness;
  const clock = new ManualClock(Date.now());

  beforeAll(async () => {
    h = await startHarness({ clock });
    await h.createTenant('expiry-co');
  });
  afterAll(async () => {
    await h.close();
  });

  it('a platform-admin token says to run "service-vm-tenant admin-token"; a tenant token does not', async () => {
    const tenant = await h.issueToken('expiry-co', 'tenant:read', 3600);
    // Both are used once first, so the refusal also holds for a verification served from the cache.
    expect((await h.request('GET', '/v1/tenants', { token: h.adminToken })).statusCode).toBe(200);
    expect((await h.request('GET', '/v1/vms', { token: tenant.token })).statusCode).toBe(200);
    clock.advance(31 * 24 * 3600 * 1000);

    const platform = expectProblem(await h.request('GET', '/v1/tenants', { token: h.adminToken }), 401);
    expect(platform).toMatchObject({ token_error: 'expired' });
    expect(platform.detail).toMatch(/platform-admin token has expired: run "service-vm-tenant admin-token"/);

    const ofTenant = expectProblem(await h.request('GET', '/v1/vms', { token: tenant.token }), 401);
    expect(ofTenant).toMatchObject({ token_error: 'expired', detail: 'invalid token: token has expired' });
  });
});
