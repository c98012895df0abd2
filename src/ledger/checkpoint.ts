/**
 * C2SP tlog-checkpoint bodies (https://c2sp.org/tlog-checkpoint): the origin line, the tree size in
 * decimal, the root hash in base64, each ending in a newline, then optional extension lines. The
 * body is what a signed note signs.
 */
import { LedgerError } from './error.js';
import { HASH_BYTES } from './merkle.js';

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  extensions: string[];
}

/** A tree size and its root hash. */
export interface TreeHead {
  size: number;
  root: Buffer;
}

/** A tree head with the signed note (checkpoint) that vouches for it. */
export interface SignedTreeHead extends TreeHead {
  note: string;
}

export function formatCheckpoint(checkpoint: Omit<Checkpoint, 'extensions'> & { extensions?: string[] }): string {
  if (!checkpoint.origin || /\n/.test(checkpoint.origin)) throw new TypeError('an origin is one non-empty line');
  if (checkpoint.root.length !== HASH_BYTES) throw new RangeError('a root hash is 32 bytes');
  const extensions = (checkpoint.extensions ?? []).map((line) => `${line}\n`).join('');
  return `${checkpoint.origin}\n${checkpoint.size}\n${checkpoint.root.toString('base64')}\n${extensions}`;
}

export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new LedgerError('malformed_checkpoint', 'checkpoint does not end with a newline');
  const [origin, sizeText, rootText, ...extensions] = text.slice(0, -1).split('\n');
  if (!origin) throw new LedgerError('malformed_checkpoint', 'checkpoint has no origin line');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText ?? '') || !Number.isSafeInteger(Number(sizeText))) {
    throw new LedgerError('malformed_checkpoint', 'tree size is not a decimal number without leading zeros');
  }
  const root = Buffer.from(rootText ?? '', 'base64');
  if (root.length !== HASH_BYTES || root.toString('base64') !== rootText) {
    throw new LedgerError('malformed_checkpoint', 'root hash is not the base64 of 32 bytes');
  }
  if (extensions.some((line) => line === '')) throw new LedgerError('malformed_checkpoint', 'checkpoint has an empty extension line');
  return { origin, size: Number(sizeText), root, extensions };
}
