/**
 * The platform key set, kept in the store so that every replica signs and verifies with the same
 * keys (docs/design/tokens.md, docs/decisions/0009-platform-key-set.md). Private keys are sealed
 * under the data directory's key-encryption key; rotating and retiring record KEY_ROTATED and
 * KEY_RETIRED, and every server follows those entries to reload its keyring (LiveKeyring), as the
 * revocation list follows TOKEN_REVOKED.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { isoTime } from '../clock.js';
import { LOCAL_OPERATOR } from '../ledger/entry.js';
import { lastKeyEventIndex, lockLedger } from '../store/ledger.js';
import { insertPlatformKey, listPlatformKeys, setPlatformKeyState, type PlatformKeyRow } from '../store/platform-keys.js';
import type { Db } from '../store/schema.js';
import { announce, inTransaction } from '../store/store.js';
import { applyRetirement, applyRotation, keyringFromKeySet, type KeyState, type PlatformKeyring } from '../tokens/keyring.js';
import { encodeBase64url, generateKeyPair, keyId, rawPublicKey } from '../tokens/keys.js';
import { openSealedKey, sealPrivateKey } from '../tokens/seal.js';
import { recordEvent, type ControlDeps, type Origin } from './context.js';

const OPERATOR: Origin = { actor: LOCAL_OPERATOR, requestId: null };

/** The keyring of the stored set; throws SealError when the KEK cannot open a key, KeySetError when the set is inconsistent. */
export function keyringFromRows(rows: readonly PlatformKeyRow[], kek: Uint8Array): PlatformKeyring {
  return keyringFromKeySet(
    rows.map((row) => ({ kid: row.kid, state: row.state, privateKey: row.state === 'retired' ? null : openSealedKey(row.sealed_private_key, row.kid, kek) })),
  );
}

function sealedRow(privateKey: KeyObject, publicKey: KeyObject, state: KeyState, kek: Uint8Array, now: string): PlatformKeyRow {
  const kid = keyId(publicKey);
  return {
    kid,
    public_key: encodeBase64url(rawPublicKey(publicKey)),
    sealed_private_key: sealPrivateKey(privateKey, kid, kek),
    state,
    created_at: now,
    retired_at: null,
  };
}

export interface LegacyKeys {
  keys: readonly KeyObject[];
  activeKid: string | undefined;
}

/**
 * Makes sure the store holds a key set, at every start: keys a data directory still keeps as files
 * are imported (an imported kid that the set already holds is left as it is, whatever its state),
 * and when the set has no active key after that, a new one is made: a first start. Replicas
 * starting together take turns under the ledger lock. Writes no ledger entry: nothing rotates.
 */
export async function ensureKeySet(deps: ControlDeps, kek: Uint8Array, legacy: LegacyKeys): Promise<{ created: boolean; imported: number }> {
  return inTransaction(deps.store, async (trx) => {
    await lockLedger(trx, deps.store.dialect);
    const now = isoTime(deps.clock.now());
    const rows = await listPlatformKeys(trx);
    let hasActive = rows.some((row) => row.state === 'active');
    let imported = 0;
    for (const privateKey of legacy.keys) {
      const row = sealedRow(privateKey, createPublicKey(privateKey), 'verifying', kek, now);
      if (rows.some((r) => r.kid === row.kid)) continue;
      if (!hasActive && row.kid === legacy.activeKid) {
        row.state = 'active';
        hasActive = true;
      }
      await insertPlatformKey(trx, row);
      imported += 1;
    }
    if (hasActive) return { created: false, imported };
    const { privateKey, publicKey } = generateKeyPair();
    await insertPlatformKey(trx, sealedRow(privateKey, publicKey, 'active', kek, now));
    return { created: true, imported };
  });
}

/**
 * `keys rotate`: a new key becomes active and the one active before verifies only. The KEK must open
 * the current set first, so a data directory with a different KEK cannot add a key the others
 * could not open.
 */
export async function rotatePlatformKey(deps: ControlDeps, kek: Uint8Array): Promise<{ kid: string; previousKid: string }> {
  const { privateKey, publicKey } = generateKeyPair();
  return inTransaction(deps.store, async (trx) => {
    await lockLedger(trx, deps.store.dialect);
    const rows = await listPlatformKeys(trx);
    const previousKid = keyringFromRows(rows, kek).activeKid;
    const row = sealedRow(privateKey, publicKey, 'active', kek, isoTime(deps.clock.now()));
    const next = applyRotation(rows, row.kid);
    // The old key leaves 'active' before the new one enters: one active key at every step.
    await setPlatformKeyState(trx, previousKid, next.find((r) => r.kid === previousKid)!.state, null);
    await insertPlatformKey(trx, row);
    await recordKeyEvent(deps, trx, 'KEY_ROTATED', { kid: row.kid, previous_kid: previousKid });
    return { kid: row.kid, previousKid };
  });
}

/**
 * `keys retire KID`: the key verifies no more, on any replica, for good. Refuses the active key and
 * an unknown kid (KeySetError); retiring a retired key changes nothing and writes no second entry.
 */
export async function retirePlatformKey(deps: ControlDeps, kid: string): Promise<{ retiredAt: string; already: boolean }> {
  return inTransaction(deps.store, async (trx) => {
    await lockLedger(trx, deps.store.dialect);
    const rows = await listPlatformKeys(trx);
    const next = applyRetirement(rows, kid);
    const row = rows.find((r) => r.kid === kid)!;
    if (row.state === 'retired') return { retiredAt: row.retired_at!, already: true };
    const retiredAt = isoTime(deps.clock.now());
    await setPlatformKeyState(trx, kid, next.find((r) => r.kid === kid)!.state, retiredAt);
    await recordKeyEvent(deps, trx, 'KEY_RETIRED', { kid });
    return { retiredAt, already: false };
  });
}

async function recordKeyEvent(deps: ControlDeps, trx: Db, eventType: 'KEY_ROTATED' | 'KEY_RETIRED', data: Record<string, string>): Promise<void> {
  await recordEvent(deps, trx, OPERATOR, { event_type: eventType, tenant_id: null, subject_ids: {}, data });
  await announce(trx, deps.store.dialect, 'ppn_keys');
}

/** How often a server looks for key changes made elsewhere: well inside the 1 s promised. */
export const KEY_REFRESH_MS = 250;

/**
 * A server's keyring, following the ledger: `refresh` reloads the key set when a KEY_ROTATED or
 * KEY_RETIRED entry has been committed since the last load (on any replica, or by the CLI).
 */
export class LiveKeyring implements PlatformKeyring {
  private constructor(
    private readonly db: Db,
    private readonly kek: Uint8Array,
    private current: PlatformKeyring,
    private lastIndex: number,
  ) {}

  static async load(db: Db, kek: Uint8Array): Promise<LiveKeyring> {
    // The index is read before the keys, so a change committed in between is loaded again next time.
    const index = await lastKeyEventIndex(db);
    return new LiveKeyring(db, kek, keyringFromRows(await listPlatformKeys(db), kek), index);
  }

  get activeKid(): string {
    return this.current.activeKid;
  }

  get activeKey(): KeyObject {
    return this.current.activeKey;
  }

  publicKey(kid: string): KeyObject | undefined {
    return this.current.publicKey(kid);
  }

  async refresh(): Promise<void> {
    const index = await lastKeyEventIndex(this.db);
    if (index <= this.lastIndex) return;
    const ring = keyringFromRows(await listPlatformKeys(this.db), this.kek);
    if (index <= this.lastIndex) return;
    this.current = ring;
    this.lastIndex = index;
  }
}
