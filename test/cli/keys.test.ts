/**
 * `service-vm-tenant keys list | rotate | retire KID` as an operator runs them: real processes on a
 * data directory a real server created, on SQLite and on PostgreSQL. Also the move of a data
 * directory's platform key files into the store, and a KEK that does not match the store's.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseToken } from '../../src/tokens/format.js';
import { generateKeyPair, keyId, privateKeyToPem } from '../../src/tokens/keys.js';
import { CLI, readLedgerJson, runCli, serversStoppedAfterEach, tempDataDir } from '../support/server-process.js';
import { TEST_STORE } from '../support/stores.js';

interface KeyInfo {
  kid: string;
  state: string;
  public_key: string;
  created_at: string;
  retired_at: string | null;
}

function keys(dataDir: string, ...args: string[]) {
  return runCli(CLI.server, ['keys', ...args, '--data-dir', dataDir]);
}

function listJson(dataDir: string): KeyInfo[] {
  const out = keys(dataDir, 'list', '--json');
  expect(out.status, out.stderr).toBe(0);
  return JSON.parse(out.stdout) as KeyInfo[];
}

/** The kid in a token's root block. */
const kidOf = (token: string) => parseToken(token)[0]!.claims.kid!;

describe(`keys list, rotate and retire (${TEST_STORE})`, () => {
  const start = serversStoppedAfterEach();

  it('lists the first key as active, rotates to a new active key, refuses to retire the active or an unknown kid, and retires the old one', async () => {
    const server = await start();
    const [first] = listJson(server.dataDir);
    expect(first).toMatchObject({ kid: kidOf(server.adminToken), state: 'active', retired_at: null });

    const rotated = keys(server.dataDir, 'rotate');
    expect(rotated.status, rotated.stderr).toBe(0);
    const newKid = rotated.stdout.trim();
    expect(newKid).toMatch(/^[A-Za-z0-9_-]{11}$/);
    expect(listJson(server.dataDir).map(({ kid, state }) => ({ kid, state }))).toEqual([
      { kid: first!.kid, state: 'verifying' },
      { kid: newKid, state: 'active' },
    ]);

    const active = keys(server.dataDir, 'retire', newKid);
    expect(active.status).not.toBe(0);
    expect(active.stderr).toContain(`key ${newKid} is the active key: rotate to a new one first`);
    const unknown = keys(server.dataDir, 'retire', 'no-such-kid');
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toContain('there is no platform key no-such-kid');
    // A kid is base64url, so it may begin with "-": it is still the kid, not an option.
    const dashed = keys(server.dataDir, 'retire', '-no-such-ki');
    expect(dashed.stderr).toContain('there is no platform key -no-such-ki');
    const malformed = keys(server.dataDir, 'retire', 'not a kid');
    expect(malformed.status).toBe(2);
    expect(malformed.stderr).toContain('"not a kid" is not a key id');

    const retired = keys(server.dataDir, 'retire', first!.kid);
    expect(retired.status, retired.stderr).toBe(0);
    const after = listJson(server.dataDir);
    expect(after.find((k) => k.kid === first!.kid)).toMatchObject({ state: 'retired', retired_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    const again = keys(server.dataDir, 'retire', first!.kid);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('was retired already');

    const text = keys(server.dataDir, 'list');
    expect(text.stdout.split('\n')[0]).toMatch(/^KID +STATE +CREATED +RETIRED$/);
    expect(text.stdout).toMatch(new RegExp(`${first!.kid} +retired +\\S+ +\\S+`));

    // The ledger records each change once, by the local operator.
    const entries = readLedgerJson(server.dataDir).filter((e) => String(e.event_type).startsWith('KEY_'));
    expect(entries.map((e) => [e.event_type, e.data, e.actor.subject])).toEqual([
      ['KEY_ROTATED', { kid: newKid, previous_kid: first!.kid }, 'local-operator'],
      ['KEY_RETIRED', { kid: first!.kid }, 'local-operator'],
    ]);
  });

  it('imports the platform key files of a data directory from before, signs with the one named active, and removes the files', async () => {
    const dataDir = tempDataDir();
    mkdirSync(join(dataDir, 'keys'), { recursive: true, mode: 0o700 });
    const [older, active] = [generateKeyPair(), generateKeyPair()];
    for (const pair of [older, active]) writeFileSync(join(dataDir, 'keys', `platform-${keyId(pair.publicKey)}.pem`), privateKeyToPem(pair.privateKey), { mode: 0o600 });
    writeFileSync(join(dataDir, 'keys', 'platform.active'), `${keyId(active.publicKey)}\n`);

    const server = await start(dataDir);
    expect(kidOf(server.adminToken)).toBe(keyId(active.publicKey));
    expect(
      listJson(dataDir)
        .map(({ kid, state }) => ({ kid, state }))
        .sort((a, b) => a.state.localeCompare(b.state)),
    ).toEqual([
      { kid: keyId(active.publicKey), state: 'active' },
      { kid: keyId(older.publicKey), state: 'verifying' },
    ]);
    expect(readdirSync(join(dataDir, 'keys')).filter((name) => name.startsWith('platform'))).toEqual([]);
    expect((statSync(join(dataDir, 'keys', 'keyset.kek')).mode & 0o777).toString(8)).toBe('600');
  });

  it('refuses a key-encryption key that is not the one the key set was sealed with, saying which file to copy', async () => {
    const server = await start();
    await server.stop();
    writeFileSync(join(server.dataDir, 'keys', 'keyset.kek'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    const out = keys(server.dataDir, 'list');
    expect(out.status).not.toBe(0);
    expect(out.stderr).toContain("this data directory's keys/keyset.kek is not the one the store's key set was sealed with");
    const rotate = keys(server.dataDir, 'rotate');
    expect(rotate.status).not.toBe(0);
    expect(existsSync(join(server.dataDir, 'keys', 'keyset.kek'))).toBe(true);
  });
});
