/**
 * Signed checkpoints (SPEC §8) from a real server: within a second of new entries a checkpoint
 * covers them; its signature verifies with the published ledger key (ledger.pub and
 * /v1/ledger/key), and its root is the one anyone recomputes from the entry lines that
 * `service-fs read --json` prints.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { hashLeaf, rootFromLeafHashes } from '../../src/ledger/merkle.js';
import { openNote, parseVerifierKey } from '../../src/ledger/note.js';
import { api, CLI, runCli, startServer, within, type ServerProcess } from '../support/server-process.js';

describe('signed checkpoints', () => {
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  const entryLines = () =>
    runCli(CLI.fs, ['read', '--data-dir', server.dataDir, '--json'])
      .stdout.split('\n')
      .filter((line) => line !== '');

  async function checkpointNote(): Promise<string | null> {
    const res = await fetch(`${server.url}/v1/ledger/checkpoint`, { headers: { authorization: `Bearer ${server.adminToken}` } });
    return res.status === 200 ? res.text() : null;
  }

  it('publishes the ledger key in the data directory and over the API, and it is not a token key', async () => {
    const fileKey = readFileSync(join(server.dataDir, 'ledger.pub'), 'utf8');
    const apiKey = await (await fetch(`${server.url}/v1/ledger/key`)).text();
    expect(apiKey).toBe(fileKey);
    expect(parseVerifierKey(fileKey).name).toMatch(/^ppn-ledger-[0-9a-f]{8}$/);
  });

  it('signs a checkpoint covering new entries within a second, whose root anyone can recompute', async () => {
    const created = await api(server.url, 'POST', '/v1/tenants', { token: server.adminToken, body: { tenant_id: 'cp-co', display_name: 'Checkpointed' } });
    expect(created.status).toBe(201);
    const key = parseVerifierKey(readFileSync(join(server.dataDir, 'ledger.pub'), 'utf8'));
    const size = entryLines().length;

    let note = '';
    const took = await within(1000, async () => {
      const current = await checkpointNote();
      if (!current) return false;
      note = current;
      return parseCheckpoint(openNote(current, key)).size >= size;
    });
    expect(took, 'no checkpoint covered the new entries within 1 s').not.toBeNull();

    const checkpoint = parseCheckpoint(openNote(note, key));
    const lines = entryLines().slice(0, checkpoint.size);
    expect(checkpoint.root.equals(rootFromLeafHashes(lines.map((line) => hashLeaf(Buffer.from(line)))))).toBe(true);
    expect(runCli(CLI.fs, ['checkpoint', '--data-dir', server.dataDir]).stdout).toBe(note);
  });

  it('refuses a checkpoint whose text was changed', async () => {
    const key = parseVerifierKey(readFileSync(join(server.dataDir, 'ledger.pub'), 'utf8'));
    const note = (await checkpointNote())!;
    const [origin, size, ...rest] = note.split('\n');
    expect(() => openNote([origin, String(Number(size) + 1), ...rest].join('\n'), key)).toThrow(/does not verify/);
  });
});
