/**
 * The tree off the request path (SPEC §8), on a real server process: requests sequence entries,
 * the leader integrates them and signs a checkpoint at most once a second. An entry is covered by a
 * signed checkpoint within a second of its answer; a steady write loop gets no more than one
 * checkpoint a second; and a kill -9 in the middle of a flood, integration included, leaves a tree
 * the restarted server continues, gapless, that `service-fs verify` accepts whole.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openExistingStore } from '../../src/cli/common.js';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { openNote, parseVerifierKey, type VerifierKey } from '../../src/ledger/note.js';
import { api, CLI, readLedgerJson, runCli, serversStoppedAfterEach, within, type ServerProcess } from '../support/server-process.js';

/** The size of the latest signed checkpoint, its signature checked, or 0 before the first. */
async function checkpointSize(server: ServerProcess, key: VerifierKey): Promise<number> {
  const res = await fetch(`${server.url}/v1/ledger/checkpoint`, { headers: { authorization: `Bearer ${server.adminToken}` } });
  return res.status === 200 ? parseCheckpoint(openNote(await res.text(), key)).size : 0;
}

function ledgerKey(server: ServerProcess): VerifierKey {
  return parseVerifierKey(readFileSync(join(server.dataDir, 'ledger.pub'), 'utf8'));
}

/** A tenant that may create no VM: every create is refused, and each refusal's answer names its entry. */
async function refusingTenant(server: ServerProcess, tenantId: string): Promise<void> {
  const res = await api(server.url, 'POST', '/v1/tenants', {
    token: server.adminToken,
    body: { tenant_id: tenantId, display_name: tenantId, max_vms: 0, api_rate_limit_rpm: 100_000 },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

/** A refused create: its VM_CREATE_DENIED entry's index, from the answer. */
async function deniedEntry(server: ServerProcess, tenantId: string): Promise<number> {
  const res = await api(server.url, 'POST', `/v1/vms?tenant_id=${tenantId}`, { token: server.adminToken, body: { name: 'refused' } });
  expect(res.status, JSON.stringify(res.body)).toBe(429);
  return res.body.ledger_index as number;
}

/** Checkpoints stored so far, read from the server's own store. */
async function storedCheckpoints(server: ServerProcess): Promise<number> {
  const url = (() => {
    try {
      return readFileSync(join(server.dataDir, 'database.url'), 'utf8').trim();
    } catch {
      return undefined;
    }
  })();
  const store = openExistingStore(server.dataDir, url);
  try {
    const row = await store.db
      .selectFrom('ledger_checkpoints')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  } finally {
    await store.close();
  }
}

/**
 * How long after its answer an entry must be in a signed checkpoint: the one-a-second cadence, plus
 * an allowance for integrating, checking and signing, and for this test's own polling over HTTP,
 * on a machine shared with other tests. An entry answered just after a checkpoint waits for the
 * next one, a second after it (docs/design/ledger.md).
 */
const COVERED_WITHIN_MS = 1000 + 250;

describe('the leader integrates entries and signs checkpoints off the request path', () => {
  const start = serversStoppedAfterEach();

  it('an entry is in a signed checkpoint within 1 s of the answer that names its index', async () => {
    const server = await start();
    const key = ledgerKey(server);
    await refusingTenant(server, 'prompt-co');
    for (let round = 0; round < 5; round++) {
      const index = await deniedEntry(server, 'prompt-co');
      const took = await within(COVERED_WITHIN_MS, async () => (await checkpointSize(server, key)) > index, 10);
      expect(took, `entry ${index} was in no signed checkpoint within 1 s`).not.toBeNull();
    }
  });

  it('signs at most one checkpoint a second under a steady write loop, and covers every entry at the end', async () => {
    const server = await start();
    const key = ledgerKey(server);
    await refusingTenant(server, 'steady-co');
    await within(2000, async () => (await checkpointSize(server, key)) > 0);
    const before = await storedCheckpoints(server);
    const started = Date.now();
    let last = 0;
    let writes = 0;
    while (Date.now() - started < 3000) {
      last = await deniedEntry(server, 'steady-co');
      writes++;
    }
    const seconds = (Date.now() - started) / 1000;
    expect(await within(COVERED_WITHIN_MS, async () => (await checkpointSize(server, key)) > last, 10), 'the last entry was not covered within 1 s').not.toBeNull();
    const signed = (await storedCheckpoints(server)) - before;
    expect(writes).toBeGreaterThan(signed * 5);
    // The loop, and the second after it for the last entry: one checkpoint per started second at most.
    expect(signed).toBeGreaterThanOrEqual(2);
    expect(signed).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
  });

  it('a kill -9 in the middle of a flood leaves a tree the restarted server continues: gapless, every entry proven, verify passes', async () => {
    const first = await start();
    await refusingTenant(first, 'flood-co');
    let answered = 0;
    let killed: Promise<void> | undefined;
    const attempts = Array.from({ length: 200 }, () =>
      api(first.url, 'POST', '/v1/vms?tenant_id=flood-co', { token: first.adminToken, body: { name: 'refused' } }).then((res) => {
        // Kill while the leader is integrating and signing what the first answers sequenced.
        if (res.status === 429 && ++answered === 40) killed = first.kill9();
        return res;
      }),
    );
    const settled = await Promise.allSettled(attempts);
    await (killed ?? first.kill9());
    const indexes = settled.flatMap((s) => (s.status === 'fulfilled' && s.value.status === 429 ? [s.value.body.ledger_index as number] : []));
    expect(indexes.length).toBeGreaterThanOrEqual(40);

    const second = await start(first.dataDir);
    const key = ledgerKey(second);
    const ledger = readLedgerJson<{ index: number }>(second.dataDir);
    expect(ledger.map((e) => e.index)).toEqual(ledger.map((_e, i) => i));
    for (const index of indexes) expect(index).toBeLessThan(ledger.length);
    // The new leader integrates what the killed one left sequenced, and signs over all of it.
    expect(await within(2000, async () => (await checkpointSize(second, key)) >= ledger.length), 'the restarted server did not cover the ledger').not.toBeNull();
    const after = await deniedEntry(second, 'flood-co');
    expect(after).toBe(ledger.length);
    expect(await within(COVERED_WITHIN_MS, async () => (await checkpointSize(second, key)) > after)).not.toBeNull();
    await second.stop();
    const verify = runCli(CLI.fs, ['verify', '--data-dir', second.dataDir]);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`ledger verified: ${after + 1} entries`));
  });
});
