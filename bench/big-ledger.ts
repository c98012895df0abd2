/**
 * A data directory whose ledger holds many entries, written straight into the tables (entries, every
 * perfect subtree of the tree, checkpoints signed with the directory's ledger key) in large
 * multi-row inserts instead of one request each: what a server that had appended them would have
 * stored, in seconds rather than hours. For bench/startup.ts and the start-up and scrub tests.
 */
import { randomUUID } from 'node:crypto';
import { initDataDir, loadLedgerSigner, rememberDatabaseUrl, writeLedgerPublicKey } from '../src/config/data-dir.js';
import { writeLedgerState } from '../src/config/ledger-state.js';
import { openWritableStore } from '../src/cli/common.js';
import { formatCheckpoint, type SignedTreeHead } from '../src/ledger/checkpoint.js';
import { encodeEntry } from '../src/ledger/entry.js';
import { hashChildren, hashLeaf } from '../src/ledger/merkle.js';
import { signNote } from '../src/ledger/note.js';
import type { LedgerEntriesTable, LedgerNodesTable } from '../src/store/schema.js';

/** Rows per insert statement: well under both stores' limits on bound parameters. */
const ENTRY_ROWS = 500;
const NODE_ROWS = 2000;

export interface BigLedger {
  /** Checkpoints signed and stored, by size. */
  checkpoints: SignedTreeHead[];
}

/**
 * Fills `dataDir` (created if need be; on PostgreSQL with `databaseUrl`, which it then remembers)
 * with `entries` VM_CREATED entries, a checkpoint at each size in `checkpointAt`, and, when
 * `remember` is one of them, ledger.state naming that checkpoint, as a server that signed it would.
 */
export async function fillBigLedger(dataDir: string, options: { entries: number; checkpointAt: number[]; remember?: number; databaseUrl?: string }): Promise<BigLedger> {
  initDataDir(dataDir);
  writeLedgerPublicKey(dataDir);
  const signer = loadLedgerSigner(dataDir);
  const store = await openWritableStore(dataDir, options.databaseUrl);
  if (options.databaseUrl) rememberDatabaseUrl(dataDir, options.databaseUrl);
  const checkpoints: SignedTreeHead[] = [];
  try {
    // The right edge of the tree: one perfect subtree per level, as the stored tree grows.
    const edge: { level: number; index: number; hash: Buffer }[] = [];
    const signAt = new Set(options.checkpointAt);
    let entries: LedgerEntriesTable[] = [];
    const nodes: LedgerNodesTable[] = [];
    const flush = async (all: boolean) => {
      if (entries.length >= ENTRY_ROWS || (all && entries.length > 0)) {
        await store.db.insertInto('ledger_entries').values(entries).execute();
        entries = [];
      }
      while (nodes.length >= NODE_ROWS || (all && nodes.length > 0)) {
        await store.db.insertInto('ledger_nodes').values(nodes.splice(0, NODE_ROWS)).execute();
      }
    };
    const ts = new Date().toISOString();
    for (let index = 0; index < options.entries; index++) {
      const vm = `vm_${randomUUID()}`;
      const line = encodeEntry({
        index,
        ts,
        event_type: 'VM_CREATED',
        tenant_id: `tenant-${index % 64}`,
        actor: { token_id: `tok_${index % 64}`, subject: 'generated', scope: ['service:tenant-admin'] },
        request_id: randomUUID(),
        subject_ids: { vm_id: vm },
        data: { name: `web-${index}`, vcpus: 2, memory_mb: 4096, disk_gb: 40, image: 'debian-12', desired_state: 'running' },
      });
      entries.push({
        idx: index,
        ts,
        event_type: 'VM_CREATED',
        tenant_id: `tenant-${index % 64}`,
        vm_id: vm,
        node_id: null,
        token_id: null,
        actor_token_id: `tok_${index % 64}`,
        entry: line,
      });
      let top = { level: 0, index, hash: hashLeaf(Buffer.from(line)) };
      nodes.push({ level: 0, idx: index, hash: top.hash.toString('hex') });
      while (edge.length > 0 && edge[edge.length - 1]!.level === top.level) {
        const left = edge.pop()!;
        top = { level: top.level + 1, index: left.index / 2, hash: hashChildren(left.hash, top.hash) };
        nodes.push({ level: top.level, idx: top.index, hash: top.hash.toString('hex') });
      }
      edge.push(top);
      const size = index + 1;
      if (signAt.has(size)) {
        let root = edge[edge.length - 1]!.hash;
        for (let i = edge.length - 2; i >= 0; i--) root = hashChildren(edge[i]!.hash, root);
        const note = signNote(formatCheckpoint({ origin: signer.origin, size, root }), signer.origin, signer.key);
        await store.db.insertInto('ledger_checkpoints').values({ size, note, created_at: ts }).execute();
        checkpoints.push({ size, root, note });
      }
      await flush(false);
    }
    await flush(true);
  } finally {
    await store.close();
  }
  const remembered = checkpoints.find((c) => c.size === options.remember);
  if (remembered) writeLedgerState(dataDir, remembered);
  return { checkpoints };
}
