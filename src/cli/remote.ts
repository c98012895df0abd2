/**
 * `service-fs --url URL --token TOKEN`: the ledger read from a server, trusting nothing it says that
 * it cannot prove (SPEC §8). Every checkpoint must carry a valid signature by the ledger key; every
 * entry must come with an inclusion proof that verifies against that checkpoint; and the last
 * checkpoint seen for the ledger is remembered, so the next one must be proven consistent with it.
 * A server that shows a history forked from what was seen before (or rolled back) is refused.
 *
 * The ledger key is pinned per server URL on first use (or given with --ledger-key, e.g. the
 * operator's ledger.pub); the remembered checkpoint is kept per ledger origin, so replicas of one
 * ledger must all agree. Both live in <config dir>/ppn/ledger-state.json, where the config dir is
 * $XDG_CONFIG_HOME or ~/.config.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseCheckpoint, type Checkpoint } from '../ledger/checkpoint.js';
import { claimedIndex } from '../ledger/entry.js';
import { hashLeaf, verifyConsistency, verifyInclusion } from '../ledger/merkle.js';
import { openNote, parseVerifierKey, type VerifierKey } from '../ledger/note.js';
import { plainHttpRefusal, send, type ClientTls } from '../tls/client.js';
import { CliError, EXIT_USAGE } from './command-line.js';

export interface RemoteOptions {
  url: string;
  token: string;
  /** A verifier key, or a file holding one (ledger.pub). */
  ledgerKey?: string | undefined;
  /** The CA the server's certificate is checked against (default: the system's). */
  tls?: ClientTls;
  /** Allow plain http:// to another machine. */
  insecure?: boolean;
}

interface State {
  /** Server URL → the verifier key text pinned for it. */
  keys: Record<string, string>;
  /** Ledger origin → the last signed checkpoint seen. */
  checkpoints: Record<string, string>;
}

/** What a remote command works from: a checkpoint checked as described above. */
export interface TrustedCheckpoint {
  checkpoint: Checkpoint;
  note: string;
}

export function stateFile(): string {
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'ppn', 'ledger-state.json');
}

function loadState(): State {
  try {
    const parsed = JSON.parse(readFileSync(stateFile(), 'utf8')) as Partial<State>;
    return { keys: parsed.keys ?? {}, checkpoints: parsed.checkpoints ?? {} };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { keys: {}, checkpoints: {} };
    throw new CliError(`cannot read ${stateFile()}: ${(error as Error).message}`);
  }
}

function saveState(state: State): void {
  const file = stateFile();
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/** A client of one server's /v1/ledger routes. Problems become CliErrors carrying the server's detail. */
export class LedgerClient {
  readonly base: string;

  constructor(private readonly options: RemoteOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new CliError(`--url wants an http(s) URL such as http://127.0.0.1:9221; got "${options.url}"`, 2);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(`--url wants an http(s) URL; got "${options.url}"`, 2);
    const refusal = plainHttpRefusal(url, options.insecure === true);
    if (refusal) throw new CliError(refusal, 2);
    this.base = url.origin + url.pathname.replace(/\/+$/, '');
  }

  private async get(path: string, query: Record<string, string | number | undefined> = {}): Promise<Response> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const url = `${this.base}${path}${params.size > 0 ? `?${params.toString()}` : ''}`;
    let response: Response;
    try {
      response = await send(url, { headers: { authorization: `Bearer ${this.options.token}` } }, this.options.tls);
    } catch (error) {
      throw new CliError(`cannot reach ${this.base}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`);
    }
    if (!response.ok) {
      const text = await response.text();
      let detail = text.trim().slice(0, 500);
      try {
        detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
      } catch {
        // not problem+json: keep the text
      }
      throw new CliError(`${path}: ${response.status} ${detail}`);
    }
    return response;
  }

  async text(path: string): Promise<string> {
    return (await this.get(path)).text();
  }

  async json<T>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    return (await this.get(path, query)).json() as Promise<T>;
  }

  /** A proof as served, refused unless every hash is 32 bytes of lower-case hex. */
  async proof(path: string, query: Record<string, number>): Promise<{ hashes: Buffer[]; leafHash: Buffer | undefined }> {
    const body = await this.json<{ hashes?: unknown; leaf_hash?: unknown }>(path, query);
    const isHash = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
    if (!Array.isArray(body.hashes) || body.hashes.length > 128 || !body.hashes.every(isHash) || (body.leaf_hash !== undefined && !isHash(body.leaf_hash))) {
      throw new CliError(`refused: the server's answer to ${path} is not a proof (hashes must be 64 hex digits each)`);
    }
    return { hashes: body.hashes.map((h) => Buffer.from(h, 'hex')), leafHash: isHash(body.leaf_hash) ? Buffer.from(body.leaf_hash, 'hex') : undefined };
  }
}

function parseKey(text: string, from: string): VerifierKey {
  try {
    return parseVerifierKey(text);
  } catch (error) {
    throw new CliError(`the ledger key ${from} is not a verifier key: ${(error as Error).message}`);
  }
}

/**
 * The key `--ledger-key` gives (service-fs --url, restore): a verifier key, or a file holding one
 * such as ledger.pub, with its text. One that is neither is a wrong command line (exit 2).
 */
export function givenLedgerKey(given: string): { text: string; key: VerifierKey } {
  const isFile = existsSync(given);
  const text = (isFile ? readFileSync(given, 'utf8') : given).trim();
  try {
    return { text, key: parseVerifierKey(text) };
  } catch (error) {
    const why = (error as Error).message;
    throw new CliError(
      isFile
        ? `the ledger key in ${given} (--ledger-key) is not a verifier key: ${why}`
        : `--ledger-key wants a verifier key or a file holding one, such as ledger.pub: "${given}" is neither (no such file; ${why})`,
      EXIT_USAGE,
      { cause: error },
    );
  }
}

/** The ledger key for this server: given (and then pinned), pinned before, or served and pinned now. */
async function pinnedKey(client: LedgerClient, state: State, given: string | undefined): Promise<VerifierKey> {
  if (given !== undefined) {
    const { text, key } = givenLedgerKey(given);
    state.keys[client.base] = text;
    return key;
  }
  const pinned = state.keys[client.base];
  if (pinned !== undefined) return parseKey(pinned, `pinned for ${client.base} in ${stateFile()}`);
  const text = (await client.text('/v1/ledger/key')).trim();
  const key = parseKey(text, `served by ${client.base}`);
  process.stderr.write(`trusting ledger key ${text} for ${client.base} from now on (first use; pin one with --ledger-key <ledger.pub>)\n`);
  state.keys[client.base] = text;
  return key;
}

/**
 * Fetches the server's latest checkpoint, checks its signature, and demands that it extend the last
 * checkpoint seen for this ledger (a consistency proof, verified here). Remembers it on success.
 */
export async function trustedCheckpoint(client: LedgerClient, ledgerKey: string | undefined): Promise<TrustedCheckpoint> {
  const state = loadState();
  const key = await pinnedKey(client, state, ledgerKey);
  const note = await client.text('/v1/ledger/checkpoint');
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpoint(openNote(note, key));
  } catch (error) {
    throw new CliError(`the server's checkpoint is refused: ${(error as Error).message}`);
  }
  if (checkpoint.origin !== key.name) throw new CliError(`the server's checkpoint is for ledger "${checkpoint.origin}", not "${key.name}"`);

  const remembered = state.checkpoints[key.name];
  if (remembered !== undefined) {
    let seen: Checkpoint;
    try {
      seen = parseCheckpoint(openNote(remembered, key));
    } catch (error) {
      throw new CliError(`the checkpoint remembered for ${key.name} in ${stateFile()} does not open with this key: ${(error as Error).message}`);
    }
    const forked = (why: string) =>
      new CliError(`refused: ${client.base} serves a history of ledger ${key.name} that is not an extension of the one seen before (size ${seen.size}): ${why}`);
    if (checkpoint.size < seen.size) throw forked(`its checkpoint is smaller (size ${checkpoint.size})`);
    if (checkpoint.size === seen.size && !checkpoint.root.equals(seen.root)) throw forked(`its root at size ${seen.size} differs`);
    // A remembered empty tree is a prefix of any tree: there is nothing to prove, so nothing to ask.
    if (checkpoint.size > seen.size && seen.size > 0) {
      const { hashes } = await client.proof('/v1/ledger/proof/consistency', { from: seen.size, to: checkpoint.size });
      if (!verifyConsistency(seen.size, checkpoint.size, seen.root, checkpoint.root, hashes)) {
        throw forked(`the consistency proof from size ${seen.size} to ${checkpoint.size} does not verify`);
      }
    }
  }
  state.checkpoints[key.name] = note;
  saveState(state);
  return { checkpoint, note };
}

export interface RemoteEntry {
  index: number;
  leaf_input: string;
}

/** An entry's bytes must say the index it is served under. */
export function checkIndex(entry: RemoteEntry): void {
  const claimed = claimedIndex(entry.leaf_input, entry.index);
  if (claimed !== entry.index) throw new CliError(`refused: the server's entry ${entry.index} says it is entry ${String(claimed)}`);
}

/**
 * Checks that each entry is in the tree of the checkpoint: its index matches its bytes, and the
 * server's inclusion proof for it verifies against the signed root. A few proofs are fetched at once.
 */
export async function verifyEntries(client: LedgerClient, { checkpoint }: TrustedCheckpoint, entries: readonly RemoteEntry[]): Promise<void> {
  const PARALLEL = 8;
  let next = 0;
  const worker = async () => {
    while (next < entries.length) {
      const entry = entries[next++]!;
      checkIndex(entry);
      const { hashes } = await client.proof('/v1/ledger/proof/inclusion', { index: entry.index, tree_size: checkpoint.size });
      if (!verifyInclusion(entry.index, checkpoint.size, hashLeaf(Buffer.from(entry.leaf_input)), hashes, checkpoint.root)) {
        throw new CliError(`refused: entry ${entry.index} as served is not in the signed tree of size ${checkpoint.size}`);
      }
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}
