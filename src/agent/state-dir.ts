/**
 * The node's state directory (SPEC §7): its key, its enrollment, and the VMs and base images the
 * QEMU driver keeps (vms/, images/). 0700, with the key and the enrollment (which holds the token)
 * 0600.
 *
 *   node.pem          the node's Ed25519 private key (`init`)
 *   node.pub          its public key in base64url, the subject of the node's node:agent token
 *   enrollment.json   server URL, token and node id (`enroll`), and how to trust the server: the
 *                     CA file `--ca` named and whether `--insecure` was given; read by `run`
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeSecretFile } from '../config/data-dir.js';
import { AgentError } from './error.js';

export const ROOT_STATE_DIR = '/var/lib/ppn-host';
export const USER_STATE_DIR = './.ppn-host';

export interface Enrollment {
  server: string;
  token: string;
  node_id: string;
  /** The CA file that signs the server's certificate (read at every start), when not the system's. */
  ca_file?: string;
  insecure?: boolean;
}

/** The default: the system directory for root, a directory beside the user otherwise. */
export function defaultStateDir(): string {
  return process.getuid?.() === 0 ? ROOT_STATE_DIR : USER_STATE_DIR;
}

export function nodeKeyFile(stateDir: string): string {
  return join(stateDir, 'node.pem');
}

function enrollmentFile(stateDir: string): string {
  return join(stateDir, 'enrollment.json');
}

/** Makes the directory 0700, tightening looser bits of an existing one (it holds a token). */
export function prepareStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  if ((statSync(stateDir).mode & 0o777) !== 0o700) chmodSync(stateDir, 0o700);
}

export function requireNodeKey(stateDir: string): string {
  const file = nodeKeyFile(stateDir);
  if (!existsSync(file)) throw new AgentError('not_initialised', `no node key at ${file}: run "service-vm-host init" first`);
  return file;
}

export function writeEnrollment(stateDir: string, enrollment: Enrollment): void {
  writeSecretFile(enrollmentFile(stateDir), `${JSON.stringify(enrollment, null, 2)}\n`);
}

export function readEnrollment(stateDir: string): Enrollment {
  let text: string;
  try {
    text = readFileSync(enrollmentFile(stateDir), 'utf8');
  } catch {
    throw new AgentError('not_enrolled', `this node is not enrolled (no ${enrollmentFile(stateDir)}): run "service-vm-host enroll" first`);
  }
  return JSON.parse(text) as Enrollment;
}
