/** What a token holder hands to `ppn`: a token (its text, or a file holding it) and a private key file. */
import { existsSync, readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { TokenError } from '../tokens/error.js';
import { parseToken, TOKEN_PREFIX, type TokenBlock } from '../tokens/format.js';
import { privateKeyFromPem } from '../tokens/keys.js';
import { CliError } from './command-line.js';

/** The token text given directly (`pct1.…`) or in a file, such as an operator's admin.token. */
export function readToken(given: string, option: string): string {
  if (given.startsWith(`${TOKEN_PREFIX}.`)) return given.trim();
  if (existsSync(given)) return readFileSync(given, 'utf8').trim();
  throw new CliError(`${option} wants a token (pct1.…) or a file holding one; "${given}" is neither`);
}

export function parseTokenText(text: string): TokenBlock[] {
  try {
    return parseToken(text);
  } catch (error) {
    if (error instanceof TokenError) throw new CliError(`not a valid token: ${error.message}`);
    throw error;
  }
}

/** An Ed25519 private key in PEM, as `ppn keygen --out` writes it. */
export function readPrivateKey(file: string): KeyObject {
  return parsePrivateKey(readKeyText(file), file);
}

/** The text of a key file, refused in one line when it cannot be read. */
export function readKeyText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read the key ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** A private key's PEM, read from `source` (a path, or where it was saved, for the message). */
export function parsePrivateKey(pem: string, source: string): KeyObject {
  try {
    return privateKeyFromPem(pem);
  } catch {
    throw new CliError(`${source} is not an Ed25519 private key in PEM (make one with ppn keygen)`);
  }
}
