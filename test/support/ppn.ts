/**
 * The built `ppn` CLI as a token holder runs it: a key pair from `ppn keygen`, a token delegated
 * offline with `ppn token delegate`, and requests with `ppn api`, each a real child process.
 */
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateKeyFromPem } from '../../src/tokens/keys.js';
import { CLI, runCli } from './server-process.js';

export interface Holder {
  /** The private key file `ppn keygen --out` wrote. */
  keyFile: string;
  /** The public key as `ppn keygen` printed it (base64url), for subject_pubkey and --subject. */
  pub: string;
  /** The same private key, loaded, for signing in-process where a process per request is too slow. */
  privateKey: KeyObject;
}

export function keygen(name: string): Holder {
  const keyFile = join(mkdtempSync(join(tmpdir(), 'ppn-holder-')), `${name}.key`);
  const made = runCli(CLI.ppn, ['keygen', '--out', keyFile]);
  if (made.status !== 0) throw new Error(`ppn keygen exited ${made.status}: ${made.stderr}`);
  return { keyFile, pub: made.stdout.trim(), privateKey: privateKeyFromPem(readFileSync(keyFile, 'utf8')) };
}

/** `ppn token delegate` by `holder` of `token`, with the given flags; returns the new token. */
export function delegate(token: string, holder: Holder, flags: string[]): string {
  const out = runCli(CLI.ppn, ['token', 'delegate', '--token', token, '--key', holder.keyFile, ...flags]);
  if (out.status !== 0 || out.stderr !== '') throw new Error(`ppn token delegate exited ${out.status}: ${out.stderr}`);
  return out.stdout.trim();
}

/** `ppn token inspect --json`: the token's block ids, root first. */
export function blockIds(token: string): string[] {
  const out = runCli(CLI.ppn, ['token', 'inspect', token, '--json']);
  if (out.status !== 0) throw new Error(`ppn token inspect exited ${out.status}: ${out.stderr}`);
  return (JSON.parse(out.stdout) as { blocks: { id: string }[] }).blocks.map((block) => block.id);
}

/** `ppn api` as `holder` of `token` (signed with its key file); the body it printed, parsed. */
export function ppnApi(server: string, token: string, holder: Holder | null, method: string, path: string, data?: unknown) {
  const args = ['api', method, path, '--server', server, '--token', token, ...(holder ? ['--key', holder.keyFile] : [])];
  if (data !== undefined) args.push('--data', JSON.stringify(data));
  const out = runCli(CLI.ppn, args);
  return { status: out.status, body: out.stdout === '' ? null : JSON.parse(out.stdout), stderr: out.stderr };
}
