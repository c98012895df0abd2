/**
 * Two replicas on one PostgreSQL database, one leader integrating (SPEC §8): both sequence entries,
 * gapless between them; an entry written on the standby is in a signed checkpoint within a second
 * (the leader polls for other servers' entries); and when the leader is killed with kill -9 in the
 * middle of writes on both, the standby takes over, integrates what was left sequenced, and the
 * whole ledger verifies.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { openNote, parseVerifierKey, type VerifierKey } from '../../src/ledger/note.js';
import { api, CLI, readLedgerJson, replicaDataDir, runCli, startServer, within, type ServerProcess } from '../support/server-process.js';

async function role(server: ServerProcess): Promise<string> {
  return (await api(server.url, 'GET', '/readyz')).body.background;
}

async function checkpointSize(server: ServerProcess, key: VerifierKey): Promise<number> {
  const res = await fetch(`${server.url}/v1/ledger/checkpoint`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  return res.status === 200 ? parseCheckpoint(openNote(await res.text(), key)).size : 0;
}

/**
 * A refused create (the tenant may have no VM): the index of its VM_CREATE_DENIED entry, or null
 * when the request failed because the test is killing that server.
 */
async function deniedEntry(server: ServerProcess, token: string, tenantId: string, killing = () => false): Promise<number | null> {
  try {
    const res = await api(server.url, 'POST', `/v1/vms?tenant_id=${tenantId}`, { token, body: { name: 'refused' } });
    expect(res.status, JSON.stringify(res.body)).toBe(429);
    return res.body.ledger_index as number;
  } catch (error) {
    if (killing()) return null;
    throw error;
  }
}

/** Writes on `server` in a loop until `stop()` holds or the server is killed; returns the indexes answered. */
async function writeLoop(server: ServerProcess, token: string, tenantId: string, stop: () => boolean, killing = () => false): Promise<number[]> {
  const indexes: number[] = [];
  while (!stop()) {
    const index = await deniedEntry(server, token, tenantId, killing);
    if (index === null) break;
    indexes.push(index);
  }
  return indexes;
}

/**
 * How long after its answer another replica's entry must be in a signed checkpoint: the
 * one-a-second cadence, the leader's 150 ms poll for entries sequenced elsewhere, and an allowance
 * for integrating, checking, signing and this test's polling on a shared machine.
 */
const COVERED_WITHIN_MS = 1000 + 150 + 250;

describe('two replicas sequencing, one leader integrating', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let key: VerifierKey;

  beforeAll(async () => {
    a = await startServer();
    expect(await within(5000, async () => (await role(a)) === 'leader')).not.toBeNull();
    b = await startServer(replicaDataDir(a.dataDir));
    key = parseVerifierKey(readFileSync(join(a.dataDir, 'ledger.pub'), 'utf8'));
    for (const tenant of ['on-a', 'on-b']) {
      const res = await api(a.url, 'POST', '/v1/tenants', {
        token: a.adminToken,
        body: { tenant_id: tenant, display_name: tenant, max_vms: 0, api_rate_limit_rpm: 100_000 },
      });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    for (const server of [a, b]) if (server.process.exitCode === null && server.process.signalCode === null) await server.stop();
  });

  it("an entry the standby writes is in the leader's signed checkpoint within 1 s", async () => {
    expect(await role(b)).toBe('standby');
    for (let round = 0; round < 5; round++) {
      const index = (await deniedEntry(b, a.adminToken, 'on-b'))!;
      const took = await within(COVERED_WITHIN_MS, async () => (await checkpointSize(b, key)) > index, 10);
      expect(took, `entry ${index} written on the standby was in no checkpoint within 1 s`).not.toBeNull();
    }
  });

  it('writes on both at once are sequenced gapless, and every one is covered within 1 s of the last', async () => {
    const until = Date.now() + 2000;
    const [onA, onB] = await Promise.all([writeLoop(a, a.adminToken, 'on-a', () => Date.now() > until), writeLoop(b, a.adminToken, 'on-b', () => Date.now() > until)]);
    const all = [...onA, ...onB];
    expect(new Set(all).size).toBe(all.length);
    const last = Math.max(...all);
    expect(await within(COVERED_WITHIN_MS, async () => (await checkpointSize(a, key)) > last, 10), 'the last entry was not covered within 1 s').not.toBeNull();
    const ledger = readLedgerJson<{ index: number }>(a.dataDir);
    expect(ledger.map((e) => e.index)).toEqual(ledger.map((_e, i) => i));
  });

  it('a kill -9 of the leader in the middle of writes on both: the standby takes over and integrates the rest, and the ledger verifies', async () => {
    let stopping = false;
    let killing = false;
    const loops = Promise.all([
      writeLoop(
        a,
        a.adminToken,
        'on-a',
        () => stopping,
        () => killing,
      ),
      writeLoop(b, a.adminToken, 'on-b', () => stopping),
    ]);
    let onA: number[];
    let onB: number[];
    try {
      await new Promise((resolve) => setTimeout(resolve, 700));
      killing = true;
      await a.kill9();
      expect(await within(5000, async () => (await role(b)) === 'leader'), 'the standby did not take over within 5 s').not.toBeNull();
    } finally {
      stopping = true;
      [onA, onB] = await loops;
    }
    expect(onA.length + onB.length).toBeGreaterThan(10);

    const ledger = readLedgerJson<{ index: number }>(b.dataDir);
    expect(ledger.map((e) => e.index)).toEqual(ledger.map((_e, i) => i));
    for (const index of [...onA, ...onB]) expect(index).toBeLessThan(ledger.length);
    expect(await within(2000, async () => (await checkpointSize(b, key)) >= ledger.length), 'the new leader did not cover the ledger').not.toBeNull();
    const verify = runCli(CLI.fs, ['verify', '--data-dir', b.dataDir]);
    expect(verify.status, verify.stderr).toBe(0);
  });
});
