/**
 * The platform's token-signing keys. One key is active and signs new root tokens; every key not
 * retired verifies, so tokens signed before a rotation stay valid until they expire or their key is
 * retired (SPEC §5). The key set's states and their transitions are here, free of any store: the
 * store keeps the set (src/control/platform-keys.ts) and builds keyrings from it with these.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { keyId } from './keys.js';

export interface PlatformKeyring {
  readonly activeKid: string;
  readonly activeKey: KeyObject;
  /** The public key of a key that may verify, or undefined when the kid is unknown or retired. */
  publicKey(kid: string): KeyObject | undefined;
}

/** active: signs new tokens and verifies; verifying: verifies only; retired: neither, for good. */
export type KeyState = 'active' | 'verifying' | 'retired';

export interface KeyStateRecord {
  kid: string;
  state: KeyState;
}

/** A key of the set as loaded: the private key is opened for every key but the retired ones. */
export interface KeySetMember extends KeyStateRecord {
  privateKey: KeyObject | null;
}

export type KeySetErrorCode = 'active_key' | 'unknown_kid' | 'no_active_key' | 'kid_mismatch';

/** A key-set change refused, or a stored key set that breaks its invariants. */
export class KeySetError extends Error {
  constructor(
    readonly code: KeySetErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'KeySetError';
  }
}

export function buildKeyring(privateKeys: readonly KeyObject[], activeKid: string): PlatformKeyring {
  const members = privateKeys.map((privateKey) => {
    const kid = keyId(createPublicKey(privateKey));
    return { kid, state: kid === activeKid ? ('active' as const) : ('verifying' as const), privateKey };
  });
  if (!members.some((m) => m.state === 'active')) throw new RangeError(`active platform key ${activeKid} is not in the keyring`);
  return keyringFromKeySet(members);
}

/**
 * The keyring of a stored key set: exactly one active key, and each opened private key must be the
 * key its kid names (a row cannot lend its kid to another key).
 */
export function keyringFromKeySet(members: readonly KeySetMember[]): PlatformKeyring {
  const publicKeys = new Map<string, KeyObject>();
  let active: KeySetMember | undefined;
  for (const member of members) {
    if (member.state === 'retired') continue;
    if (!member.privateKey) throw new TypeError(`key ${member.kid} is ${member.state} but its private key was not opened`);
    const publicKey = createPublicKey(member.privateKey);
    if (keyId(publicKey) !== member.kid) throw new KeySetError('kid_mismatch', `the stored key ${member.kid} is not the key that kid names`);
    publicKeys.set(member.kid, publicKey);
    if (member.state !== 'active') continue;
    if (active) throw new KeySetError('active_key', `two platform keys are active: ${active.kid} and ${member.kid}`);
    active = member;
  }
  if (!active) throw new KeySetError('no_active_key', 'no platform key is active');
  const { kid: activeKid, privateKey: activeKey } = active;
  return { activeKid, activeKey: activeKey!, publicKey: (kid) => publicKeys.get(kid) };
}

/** After `keys rotate`: the new key is active and the one active before verifies only. */
export function applyRotation(records: readonly KeyStateRecord[], newKid: string): KeyStateRecord[] {
  if (records.some((r) => r.kid === newKid)) throw new RangeError(`key ${newKid} is in the set already`);
  const demoted = records.map((r) => (r.state === 'active' ? { ...r, state: 'verifying' as const } : r));
  return [...demoted, { kid: newKid, state: 'active' }];
}

/**
 * After `keys retire KID`. The active key cannot be retired (rotate first), nor can a kid the set
 * does not hold; retiring a retired key changes nothing.
 */
export function applyRetirement(records: readonly KeyStateRecord[], kid: string): KeyStateRecord[] {
  const record = records.find((r) => r.kid === kid);
  if (!record) throw new KeySetError('unknown_kid', `there is no platform key ${kid}`);
  if (record.state === 'active') throw new KeySetError('active_key', `key ${kid} is the active key: rotate to a new one first, then retire this one`);
  return records.map((r) => (r.kid === kid ? { ...r, state: 'retired' as const } : r));
}
