/**
 * `service-fs verify`: checks the whole ledger of a data directory from its raw bytes with the
 * published ledger key (src/control/ledger-check.ts says what is checked), and against the
 * checkpoint the directory's server remembers (ledger.state) when there is one. Exits non-zero
 * naming the first bad entry index (SPEC §8). On a terminal it shows its progress on stderr.
 */
import { readLedgerVerifierKey } from '../config/data-dir.js';
import { readLedgerState } from '../config/ledger-state.js';
import { checkLedger } from '../control/ledger-check.js';
import { CliError, openExistingStore } from './common.js';

export async function verifyLedger(dataDir: string, databaseUrl: string | undefined): Promise<void> {
  const store = openExistingStore(dataDir, databaseUrl);
  try {
    const key = readLedgerVerifierKey(dataDir);
    let remembered;
    try {
      remembered = readLedgerState(dataDir, key);
    } catch (error) {
      throw new CliError(`ledger verification failed at index 0: ${(error as Error).message}`);
    }
    const progress = process.stderr.isTTY ? (checked: number) => process.stderr.write(`\rchecked ${checked} entries`) : undefined;
    const result = await checkLedger(store, key, { remembered, progress });
    if (progress) process.stderr.write('\n');
    if (result.problem) throw new CliError(`ledger verification failed at index ${result.problem.index}: ${result.problem.what}`);
    const latest = result.latestCheckpoint === null ? '' : `, latest at size ${result.latestCheckpoint}`;
    const extending = remembered ? `; extends the checkpoint at size ${remembered.size} in ledger.state` : '';
    const rollback = result.acceptedRollback === null ? '' : ` (after the rollback recorded at index ${result.acceptedRollback})`;
    process.stdout.write(`ledger verified: ${result.size} entries, ${result.checkpoints} checkpoints${latest}${extending}${rollback}\n`);
  } finally {
    await store.close();
  }
}
