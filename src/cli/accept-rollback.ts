/**
 * `service-vm-tenant ledger accept-rollback`: accepts, on purpose and on the record, a ledger that
 * does not extend the checkpoint this data directory's server remembers (an older backup restored).
 * The server must be stopped. It prints what it accepts, records LEDGER_ROLLED_BACK, signs a
 * checkpoint over the new history and remembers that one (src/control/ledger-rollback.ts).
 */
import { loadLedgerSigner, lockDataDir } from '../config/data-dir.js';
import { ledgerStateFile, readLedgerState, writeLedgerState } from '../config/ledger-state.js';
import { checkLedger } from '../control/ledger-check.js';
import { recordRollback } from '../control/ledger-rollback.js';
import { parseVerifierKey } from '../ledger/note.js';
import { CliError, controlDeps, openWritableStore } from './common.js';

export async function acceptRollback(dataDir: string, databaseUrl: string | undefined): Promise<void> {
  let unlock: () => void;
  try {
    unlock = lockDataDir(dataDir, new Date());
  } catch (error) {
    throw new CliError(`${(error as Error).message}: accept a rollback only with the server stopped`, 1, { cause: error });
  }
  try {
    await acceptRollbackLocked(dataDir, databaseUrl);
  } finally {
    unlock();
  }
}

/** The same, for a caller that holds the data-directory lock already (restore). */
export async function acceptRollbackLocked(dataDir: string, databaseUrl: string | undefined): Promise<void> {
  const signer = loadLedgerSigner(dataDir);
  const key = parseVerifierKey(signer.verifierKey);
  const remembered = readLedgerState(dataDir, key);
  if (!remembered) throw new CliError(`there is no ${ledgerStateFile(dataDir)}: this server remembers no checkpoint, so there is no rollback to accept`);
  const store = await openWritableStore(dataDir, databaseUrl);
  try {
    const result = await checkLedger(store, key, { remembered });
    if (!result.problem)
      throw new CliError(
        `the ledger (${result.size} entries) extends the checkpoint at size ${remembered.size} that this server remembers: there is no rollback to accept`,
      );
    if (!result.rollback) {
      throw new CliError(
        `the stored ledger fails its own check at index ${result.problem.index}: ${result.problem.what}; restore a copy that "service-fs verify" passes first`,
      );
    }
    const to = { size: result.size, root: result.root };
    process.stdout.write(
      `accepting the ledger as stored: ${to.size} entries, root ${to.root.toString('hex')}\n` +
        `in place of the checkpoint this server remembers: size ${remembered.size}, root ${remembered.root.toString('hex')}\n`,
    );
    const signed = await recordRollback(controlDeps(store), signer, { from: remembered, to });
    writeLedgerState(dataDir, signed);
    process.stdout.write(`recorded LEDGER_ROLLED_BACK at index ${to.size}, signed a checkpoint at size ${signed.size} and remembered it\n`);
  } finally {
    await store.close();
  }
}
