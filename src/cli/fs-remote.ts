/**
 * The service-fs commands against a server (--url, --token): each works from a checkpoint checked as
 * src/cli/remote.ts describes, and prints nothing the server has not proven.
 */
import { formatEntry, parseFilters, type ReadFilters } from './fs-read.js';
import { CliError } from './common.js';
import { checkIndex, LedgerClient, trustedCheckpoint, verifyEntries, type RemoteEntry, type RemoteOptions, type TrustedCheckpoint } from './remote.js';
import type { LedgerEntry } from '../ledger/entry.js';
import { hashLeaf, rootFromLeafHashes, verifyInclusion } from '../ledger/merkle.js';

const PAGE = 1000;
/** How long to wait for a checkpoint covering the newest entries (the server signs within 1 s). */
const CHECKPOINT_WAIT_MS = 5000;

export type RemoteReadOptions = RemoteOptions & ReadFilters;

const QUERY_NAMES = { tenantId: 'tenant_id', vmId: 'vm_id', nodeId: 'node_id', tokenId: 'token_id' } as const;

/** The entries the token may see that match, oldest first, as served (not yet checked). */
async function fetchEntries(client: LedgerClient, options: Omit<ReadFilters, 'json'>): Promise<RemoteEntry[]> {
  const query: Record<string, string | number | undefined> = { event_type: options.eventType, since: options.since, until: options.until };
  for (const [key, value] of Object.entries(parseFilters(options.filter))) query[QUERY_NAMES[key as keyof typeof QUERY_NAMES]] = value;
  const entries: RemoteEntry[] = [];
  let remaining = options.limit ?? Number.POSITIVE_INFINITY;
  let cursor: string | undefined;
  while (remaining > 0) {
    const page = await client.json<{ items?: unknown; next_cursor?: unknown }>('/v1/ledger/entries', { ...query, limit: Math.min(PAGE, remaining), cursor });
    if (!Array.isArray(page.items) || (page.next_cursor !== null && typeof page.next_cursor !== 'string')) {
      throw new CliError("refused: the server's answer to /v1/ledger/entries is not a page of entries");
    }
    for (const item of page.items as Partial<RemoteEntry>[]) {
      // Entries come oldest first, each once: anything else is not the ledger.
      const last = entries.at(-1)?.index ?? -1;
      if (!Number.isSafeInteger(item.index) || item.index! <= last || typeof item.leaf_input !== 'string') {
        throw new CliError(`refused: the server served a malformed or out-of-order entry after entry ${last}`);
      }
      entries.push({ index: item.index!, leaf_input: item.leaf_input });
    }
    remaining -= page.items.length;
    if (typeof page.next_cursor !== 'string') break;
    cursor = page.next_cursor;
  }
  return entries;
}

/** A trusted checkpoint that covers `entries`, waiting briefly for the server to sign one. */
async function checkpointCovering(client: LedgerClient, ledgerKey: string | undefined, entries: readonly RemoteEntry[]): Promise<TrustedCheckpoint> {
  const last = entries.at(-1)?.index ?? -1;
  let trusted = await trustedCheckpoint(client, ledgerKey);
  for (let waited = 0; last >= trusted.checkpoint.size && waited < CHECKPOINT_WAIT_MS; waited += 250) {
    await new Promise((done) => setTimeout(done, 250));
    trusted = await trustedCheckpoint(client, ledgerKey);
  }
  if (last >= trusted.checkpoint.size) {
    throw new CliError(`entry ${last} is not covered by a signed checkpoint yet (the latest has size ${trusted.checkpoint.size}); try again in a moment`);
  }
  return trusted;
}

export async function readRemote(options: RemoteReadOptions): Promise<void> {
  const client = new LedgerClient(options);
  const entries = await fetchEntries(client, options);
  await verifyEntries(client, await checkpointCovering(client, options.ledgerKey, entries), entries);
  for (const { leaf_input } of entries) {
    process.stdout.write(options.json ? `${leaf_input}\n` : `${formatEntry(JSON.parse(leaf_input) as LedgerEntry)}\n`);
  }
}

/**
 * Every entry the token may see, checked against the server's checkpoint. A platform token sees the
 * whole ledger, so it must be given every entry up to the checkpoint, and the root is recomputed from
 * them all (which proves each one's inclusion at once); a tenant's token gets an inclusion proof per
 * entry, and cannot tell whether the server left one of its entries out.
 */
export async function verifyRemote(options: RemoteOptions): Promise<void> {
  const client = new LedgerClient(options);
  const who = await client.json<{ tenant_id: string | null }>('/v1/whoami');
  const trusted = await trustedCheckpoint(client, options.ledgerKey);
  const size = trusted.checkpoint.size;
  const entries = (await fetchEntries(client, { filter: [] })).filter((entry) => entry.index < size);
  if (who.tenant_id === null) {
    const gap = entries.findIndex((entry, position) => entry.index !== position);
    if (gap >= 0 || entries.length !== size) {
      throw new CliError(`refused: the server did not serve entry ${gap >= 0 ? gap : entries.length} of the ${size} its checkpoint covers`);
    }
    const leaves = entries.map((entry) => {
      checkIndex(entry);
      return hashLeaf(Buffer.from(entry.leaf_input));
    });
    if (!rootFromLeafHashes(leaves).equals(trusted.checkpoint.root)) {
      throw new CliError(`refused: the ${size} entries served do not have the root of the signed checkpoint`);
    }
    process.stdout.write(
      `ledger verified remotely: all ${size} entries of the signed checkpoint, whose root they recompute, and which extends every checkpoint seen before\n`,
    );
    return;
  }
  await verifyEntries(client, trusted, entries);
  process.stdout.write(
    `ledger verified remotely: ${entries.length} entries visible to this token, each proven in the signed checkpoint of size ${size}, which extends every checkpoint seen before\n`,
  );
}

export async function checkpointRemote(options: RemoteOptions): Promise<void> {
  process.stdout.write((await trustedCheckpoint(new LedgerClient(options), options.ledgerKey)).note);
}

export async function proveRemote(options: RemoteOptions, index: number): Promise<void> {
  const client = new LedgerClient(options);
  const { checkpoint, note } = await trustedCheckpoint(client, options.ledgerKey);
  if (index >= checkpoint.size) throw new CliError(`entry ${index} is not covered by the latest checkpoint (size ${checkpoint.size})`);
  const { hashes, leafHash } = await client.proof('/v1/ledger/proof/inclusion', { index, tree_size: checkpoint.size });
  if (!leafHash || !verifyInclusion(index, checkpoint.size, leafHash, hashes, checkpoint.root)) {
    throw new CliError(`refused: the server's proof for entry ${index} does not verify against its signed checkpoint`);
  }
  const hex = (hash: Buffer) => hash.toString('hex');
  process.stdout.write(`${JSON.stringify({ index, tree_size: checkpoint.size, leaf_hash: hex(leafHash), proof: hashes.map(hex), checkpoint: note }, null, 2)}\n`);
}
