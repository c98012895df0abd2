/**
 * The platform's token-signing keys. One key is active and signs new root tokens; every key in the
 * ring still verifies, so tokens signed before a rotation stay valid until they expire or their key
 * is retired (SPEC §5).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { keyId } from './keys.js';

export interface PlatformKeyring {
  readonly activeKid: string;
  readonly activeKey: KeyObject;
  publicKey(kid: string): KeyObject | undefined;
}

export function buildKeyring(privateKeys: readonly KeyObject[], activeKid: string): PlatformKeyring {
  const publicKeys = new Map<string, KeyObject>();
  const privateByKid = new Map<string, KeyObject>();
  for (const privateKey of privateKeys) {
    const publicKey = createPublicKey(privateKey);
    const kid = keyId(publicKey);
    publicKeys.set(kid, publicKey);
    privateByKid.set(kid, privateKey);
  }
  const activeKey = privateByKid.get(activeKid);
  if (!activeKey) throw new RangeError(`active platform key ${activeKid} is not in the keyring`);
  return { activeKid, activeKey, publicKey: (kid) => publicKeys.get(kid) };
}
