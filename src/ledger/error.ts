/** Why an untrusted ledger artefact (a signed note, a checkpoint, a key) was refused. */
export type LedgerErrorCode = 'malformed_key' | 'malformed_note' | 'malformed_checkpoint' | 'unknown_key' | 'bad_signature';

export class LedgerError extends Error {
  readonly code: LedgerErrorCode;
  constructor(code: LedgerErrorCode, message: string) {
    super(message);
    this.name = 'LedgerError';
    this.code = code;
  }
}
