/** `service-fs checkpoint`: prints the latest signed checkpoint of the data directory's ledger. */
import { latestCheckpoint } from '../store/checkpoints.js';
import { CliError, openExistingStore } from './common.js';

export async function printCheckpoint(dataDir: string, databaseUrl: string | undefined): Promise<void> {
  const store = openExistingStore(dataDir, databaseUrl);
  try {
    const checkpoint = await latestCheckpoint(store.db);
    if (!checkpoint) throw new CliError('no checkpoint has been signed yet: the server signs one within a second of the first entry');
    process.stdout.write(checkpoint.note);
  } finally {
    await store.close();
  }
}
