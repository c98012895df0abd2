/**
 * `service-fs prove INDEX`: an inclusion proof for one entry against the latest signed checkpoint,
 * checked here before it is printed (SPEC §8). The output carries everything needed to check it
 * again elsewhere: the entry line, the proof, and the signed checkpoint.
 */
import { InvalidArgumentError } from 'commander';
import { parseCheckpoint } from '../ledger/checkpoint.js';
import { hashLeaf, verifyInclusion } from '../ledger/merkle.js';
import { openNote } from '../ledger/note.js';
import { readLedgerVerifierKey } from '../config/data-dir.js';
import { latestCheckpoint } from '../store/checkpoints.js';
import { readInclusionProof } from '../store/ledger-tree.js';
import { CliError, openExistingStore } from './common.js';

export function parseEntryIndex(value: string): number {
  const index = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(index)) throw new InvalidArgumentError(`INDEX is an entry index, a whole number from 0; got "${value}"`);
  return index;
}

export async function proveEntry(dataDir: string, databaseUrl: string | undefined, index: number): Promise<void> {
  const store = openExistingStore(dataDir, databaseUrl);
  try {
    const stored = await latestCheckpoint(store.db);
    if (!stored) throw new CliError('no checkpoint has been signed yet');
    const key = readLedgerVerifierKey(dataDir);
    const checkpoint = parseCheckpoint(openNote(stored.note, key));
    if (index >= checkpoint.size) throw new CliError(`entry ${index} is not covered by the latest checkpoint (size ${checkpoint.size})`);
    const row = await store.db.selectFrom('ledger_entries').select('entry').where('idx', '=', index).executeTakeFirst();
    if (!row) throw new CliError(`entry ${index} is not stored`);
    const leaf = hashLeaf(Buffer.from(row.entry));
    const proof = await readInclusionProof(store.db, index, checkpoint.size);
    if (!verifyInclusion(index, checkpoint.size, leaf, proof, checkpoint.root)) {
      throw new CliError(`entry ${index} does not verify against the checkpoint at size ${checkpoint.size}: run service-fs verify`);
    }
    process.stdout.write(
      `${JSON.stringify(
        { index, tree_size: checkpoint.size, entry: row.entry, leaf_hash: leaf.toString('hex'), proof: proof.map((p) => p.toString('hex')), checkpoint: stored.note },
        null,
        2,
      )}\n`,
    );
  } finally {
    await store.close();
  }
}
