/** The platform key set's rows (see PlatformKeysTable). */
import type { KeyState } from '../tokens/keyring.js';
import type { Db, PlatformKeysTable } from './schema.js';

export type PlatformKeyRow = PlatformKeysTable;

export function listPlatformKeys(db: Db): Promise<PlatformKeyRow[]> {
  return db.selectFrom('platform_keys').selectAll().orderBy('created_at').orderBy('kid').execute();
}

export type PublicPlatformKey = Omit<PlatformKeyRow, 'sealed_private_key'>;

/** The key set without its sealed private keys: what `keys list --json` and GET /v1/admin/keys show. */
export function listPublicPlatformKeys(db: Db): Promise<PublicPlatformKey[]> {
  return db.selectFrom('platform_keys').select(['kid', 'state', 'public_key', 'created_at', 'retired_at']).orderBy('created_at').orderBy('kid').execute();
}

export async function insertPlatformKey(trx: Db, row: PlatformKeyRow): Promise<void> {
  await trx.insertInto('platform_keys').values(row).execute();
}

export async function setPlatformKeyState(trx: Db, kid: string, state: KeyState, retiredAt: string | null): Promise<void> {
  await trx.updateTable('platform_keys').set({ state, retired_at: retiredAt }).where('kid', '=', kid).execute();
}
