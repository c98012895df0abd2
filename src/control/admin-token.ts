/** Platform-admin tokens for the local operator, bound to the data directory's admin key. */
import { LOCAL_OPERATOR } from '../ledger/entry.js';
import type { PlatformKeyring } from '../tokens/keyring.js';
import { encodeBase64url, rawPublicKey } from '../tokens/keys.js';
import type { KeyObject } from 'node:crypto';
import type { ControlDeps } from './context.js';
import { issueToken, type IssuedToken } from './tokens.js';

export const DEFAULT_ADMIN_TOKEN_SECONDS = 30 * 24 * 3600;

export function mintAdminToken(deps: ControlDeps, keyring: PlatformKeyring, adminPublicKey: KeyObject, expiresInSeconds: number): Promise<IssuedToken> {
  return issueToken(
    deps,
    keyring,
    { actor: LOCAL_OPERATOR, requestId: null },
    {
      tenantId: null,
      subjectPubkey: encodeBase64url(rawPublicKey(adminPublicKey)),
      scopes: ['service:platform-admin'],
      expiresInSeconds,
      limits: null,
      proofOfPossession: false,
      issuedBy: null,
    },
  );
}
