/** `ppn keygen`: an Ed25519 key pair for a token holder. */
import { existsSync, writeFileSync } from 'node:fs';
import { encodeBase64url, generateKeyPair, privateKeyToPem, rawPublicKey } from '../tokens/keys.js';
import { writeSecretFile } from '../config/secret-file.js';
import { CliError } from './command-line.js';

/** Writes the private key to `out` (0600) and the public key to `out.pub`; prints the public key. */
export function keygen(out: string, force: boolean): void {
  if (existsSync(out) && !force) throw new CliError(`${out} exists; pass --force to overwrite it`);
  process.stdout.write(`${writeKeyPair(out)}\n`);
}

/** A fresh key pair in `out` (0600) and `out.pub`; returns the public key in base64url, as a token's subject names it. */
export function writeKeyPair(out: string): string {
  const { privateKey, publicKey } = generateKeyPair();
  const pub = encodeBase64url(rawPublicKey(publicKey));
  writeSecretFile(out, privateKeyToPem(privateKey));
  writeFileSync(`${out}.pub`, `${pub}\n`);
  return pub;
}
