/** Signed checkpoints of the ledger, every one kept (SPEC §8), newest by tree size. */
import type { Db } from './schema.js';

export interface StoredCheckpoint {
  size: number;
  note: string;
  created_at: string;
}

export async function latestCheckpoint(db: Db): Promise<StoredCheckpoint | undefined> {
  const row = await db.selectFrom('ledger_checkpoints').selectAll().orderBy('size', 'desc').limit(1).executeTakeFirst();
  return row ? { ...row, size: Number(row.size) } : undefined;
}

export async function insertCheckpoint(db: Db, checkpoint: StoredCheckpoint): Promise<void> {
  await db.insertInto('ledger_checkpoints').values(checkpoint).execute();
}
