/**
 * The ledger API (SPEC §8): entries as their stored lines, filtered and paged; inclusion and
 * consistency proofs that verify (RFC 9162) against signed checkpoints and against roots recomputed
 * from every leaf; and tenant isolation: a tenant's tokens see only its entries and get proofs only
 * for them, another tenant's entry and a platform entry answering exactly like a missing one.
 * Everything runs through the real app on the harness's store; no refused request changes anything.
 */
import type { KeyObject } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { isoTime, makeIdSource, type ManualClock } from '../../src/clock.js';
import { loadAdminKey, loadLedgerSigner } from '../../src/config/data-dir.js';
import { mintAdminToken } from '../../src/control/admin-token.js';
import { signPendingCheckpoint } from '../../src/control/checkpoints.js';
import { parseCheckpoint } from '../../src/ledger/checkpoint.js';
import { consistencyProof, hashLeaf, inclusionProof, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../../src/ledger/merkle.js';
import { openNote, parseVerifierKey } from '../../src/ledger/note.js';
import { readEntries, type StoredEntry } from '../../src/store/ledger.js';
import { integrateEntries } from '../../src/store/ledger-tree.js';
import { insertEntryRow, startHarness, type Harness } from '../support/harness.js';
import { expectProblem, problemWithoutRequest, snapshotState, type ProblemBody } from './expectations.js';

const A = 'tenant-a';
const B = 'tenant-b';
const MINUTE = 60_000;

interface EntryItem {
  index: number;
  leaf_input: string;
  entry: Record<string, unknown>;
}
interface EntriesPage {
  items: EntryItem[];
  next_cursor: string | null;
}
interface InclusionAnswer {
  index: number;
  tree_size: number;
  leaf_hash: string;
  hashes: string[];
}
interface ConsistencyAnswer {
  from: number;
  to: number;
  hashes: string[];
}
interface ParsedEntry {
  index: number;
  ts: string;
  event_type: string;
  tenant_id: string | null;
  actor: { token_id: string | null };
  subject_ids: { vm_id?: string; node_id?: string; token_id?: string };
}

const fromHex = (hashes: string[]) => hashes.map((h) => Buffer.from(h, 'hex'));
const parse = (e: StoredEntry) => JSON.parse(e.line) as ParsedEntry;

/** `ms` written as an RFC 3339 time with a UTC offset of `minutes` (the same instant). */
function withOffset(ms: number, minutes: number): string {
  const local = new Date(ms + minutes * MINUTE).toISOString().slice(0, -1);
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** Drops the WORM triggers on ledger_entries, as an attacker with database access would. */
async function dropEntryWorm(h: Harness): Promise<void> {
  if (h.store.dialect === 'sqlite') {
    await sql.raw('drop trigger ledger_entries_no_update').execute(h.store.db);
    await sql.raw('drop trigger ledger_entries_no_delete').execute(h.store.db);
  } else {
    await sql.raw('drop trigger ledger_entries_worm on ledger_entries').execute(h.store.db);
  }
}

async function platformEntry(h: Harness): Promise<void> {
  await mintAdminToken({ store: h.store, clock: h.clock, ids: makeIdSource(h.clock) }, h.keyring, loadAdminKey(h.dataDir).publicKey, 3600);
}

describe('the ledger API over a ledger of two tenants and the platform', () => {
  let h: Harness;
  let clock: ManualClock;
  let aAdmin: { token: string; tokenId: string };
  let aRead: string;
  let bAdmin: string;
  let bRead: string;
  let aAgent: string;
  let aAgentKey: KeyObject;
  const aVms: string[] = [];
  const bVms: string[] = [];
  /** The start of each phase of activity; every entry of a phase has a time in [start, next start). */
  const phases: number[] = [];
  /** Every entry as stored, and every checkpoint signed, once the scene is set. */
  let stored: StoredEntry[];
  let leaves: Buffer[];
  const checkpoints: { size: number; note: string }[] = [];
  let signer: ReturnType<typeof loadLedgerSigner>;

  const get = (url: string, token?: string) => h.request('GET', url, token !== undefined ? { token } : {});

  async function list(token: string, query = ''): Promise<EntriesPage> {
    const res = await get(`/v1/ledger/entries${query}`, token);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    return res.json();
  }

  /** Walks every page with `limit`; returns the items in order and how many pages it took. */
  async function walk(token: string, filter: string, limit: number): Promise<{ items: EntryItem[]; pages: number }> {
    const items: EntryItem[] = [];
    let pages = 0;
    let cursor: string | null = null;
    do {
      const sep = filter ? '&' : '?';
      const page = await list(token, `${filter}${sep}limit=${limit}${cursor !== null ? `&cursor=${cursor}` : ''}`);
      pages++;
      expect(page.items.length).toBeLessThanOrEqual(limit);
      if (page.next_cursor !== null) expect(page.items.length).toBe(limit);
      items.push(...page.items);
      cursor = page.next_cursor;
      expect(pages).toBeLessThan(1000);
    } while (cursor !== null);
    return { items, pages };
  }

  async function createVm(token: string, name: string): Promise<string> {
    const res = await h.request('POST', '/v1/vms', { token, body: { name, disk_gb: 1 } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ vm_id: string }>().vm_id;
  }

  async function act(method: string, url: string, token: string, status: number, body?: unknown): Promise<void> {
    const res = await h.request(method, url, { token, ...(body !== undefined ? { body } : {}) });
    expect(res.statusCode, res.body).toBe(status);
  }

  async function sign(): Promise<void> {
    const checkpoint = await signPendingCheckpoint(h.store, signer, h.clock);
    expect(checkpoint).not.toBeNull();
    checkpoints.push({ size: checkpoint!.size, note: checkpoint!.note });
  }

  function nextPhase(): void {
    clock.advance(MINUTE);
    phases.push(clock.now());
  }

  beforeAll(async () => {
    h = await startHarness();
    clock = h.clock as ManualClock;
    signer = loadLedgerSigner(h.dataDir);
    phases.push(clock.now());
    await h.createTenant(A, { max_vms: 3 });
    await h.createTenant(B);
    aAdmin = await h.issueToken(A, 'service:tenant-admin');
    aRead = (await h.issueToken(A, 'tenant:read')).token;
    const agent = await h.issueToken(A, 'node:agent');
    aAgent = agent.token;
    aAgentKey = agent.keys.privateKey;
    bAdmin = (await h.issueToken(B, 'service:tenant-admin')).token;
    bRead = (await h.issueToken(B, 'tenant:read')).token;

    nextPhase();
    aVms.push(await createVm(aAdmin.token, 'a-1'));
    bVms.push(await createVm(bAdmin, 'b-1'));
    await platformEntry(h);
    await sign();

    nextPhase();
    aVms.push(await createVm(aAdmin.token, 'a-2'));
    clock.advance(1000);
    aVms.push(await createVm(aAdmin.token, 'a-3'));
    // Over A's max_vms of 3: a VM_CREATE_DENIED entry of A.
    await act('POST', '/v1/vms', aAdmin.token, 429, { name: 'a-4', disk_gb: 1 });
    await act('POST', `/v1/vms/${bVms[0]}/stop`, bAdmin, 200);
    await act('POST', `/v1/vms/${aVms[0]}/stop`, aAdmin.token, 200);
    await platformEntry(h);
    await sign();

    nextPhase();
    await act('DELETE', `/v1/vms/${aVms[1]}`, aAdmin.token, 204);
    bVms.push(await createVm(bAdmin, 'b-2'));
    const spare = await h.issueToken(A, 'tenant:read');
    await act('DELETE', `/v1/tenants/${A}/tokens/${spare.tokenId}`, aAdmin.token, 200);
    await platformEntry(h);
    await act('DELETE', `/v1/vms/${bVms[0]}`, bAdmin, 204);
    await sign();

    // The last phase is covered by no checkpoint.
    nextPhase();
    await act('POST', `/v1/vms/${aVms[0]}/start`, aAdmin.token, 200);
    await h.issueToken(B, 'tenant:read');
    await platformEntry(h);
    phases.push(clock.now() + MINUTE);
    // The leader integrates what the platform entries sequenced (the harness runs no background work).
    await integrateEntries(h.store);

    stored = await readEntries(h.store.db, { limit: 100_000 });
    leaves = stored.map((e) => hashLeaf(Buffer.from(e.line)));
    // The scene has what the tests need: gapless indexes, entries of both tenants and of none, and
    // entries past the last checkpoint.
    expect(stored.map((e) => e.index)).toEqual(stored.map((_e, i) => i));
    for (const tenant of [A, B, null]) expect(stored.filter((e) => parse(e).tenant_id === tenant).length).toBeGreaterThan(3);
    expect(checkpoints.at(-1)!.size).toBeLessThan(stored.length);
  });
  afterAll(async () => {
    await h.close();
  });

  const ofTenant = (tenant: string | null) => stored.filter((e) => parse(e).tenant_id === tenant);
  const asItems = (entries: StoredEntry[]) => entries.map((e) => ({ index: e.index, leaf_input: e.line, entry: JSON.parse(e.line) as unknown }));

  describe('entries', () => {
    it("a tenant's tokens list exactly that tenant's entries, never another's or the platform's", async () => {
      for (const [tenant, tokens] of [
        [A, [aRead, aAdmin.token]],
        [B, [bRead, bAdmin]],
      ] as const) {
        for (const token of tokens) {
          for (const query of ['', '?limit=1000', `?tenant_id=${tenant}`]) {
            const page = await list(token, query);
            expect(page.next_cursor).toBeNull();
            expect(page.items).toEqual(asItems(ofTenant(tenant)));
            for (const item of page.items) expect(item.entry.tenant_id).toBe(tenant);
          }
        }
      }
    });

    it('each item carries its stored line byte for byte, and the entry parsed from it', async () => {
      const res = await get('/v1/ledger/entries?limit=1000', h.adminToken);
      const page = res.json<EntriesPage>();
      expect(page.items.map((i) => i.index)).toEqual(stored.map((e) => e.index));
      for (const [i, item] of page.items.entries()) {
        const line = stored[i]!.line;
        expect(item.leaf_input).toBe(line);
        expect(Buffer.from(item.leaf_input).equals(Buffer.from(line))).toBe(true);
        expect(item.entry).toEqual(JSON.parse(item.leaf_input));
        expect(item.entry.index).toBe(item.index);
        // The line is on the wire as one JSON string: nothing re-encoded it.
        expect(res.body).toContain(`"leaf_input":${JSON.stringify(line)}`);
        expect(hashLeaf(Buffer.from(item.leaf_input)).equals(leaves[i]!)).toBe(true);
      }
      // What the harness reads from the store agrees.
      expect(page.items.map((i) => i.entry)).toEqual(await h.ledgerLines());
    });

    it('a platform admin lists every entry, and may narrow the list to one tenant', async () => {
      expect((await list(h.adminToken)).items).toEqual(asItems(stored.slice(0, 100)));
      expect((await list(h.adminToken, '?limit=1000')).items).toEqual(asItems(stored));
      expect((await list(h.adminToken, `?tenant_id=${A}`)).items).toEqual(asItems(ofTenant(A)));
      expect((await list(h.adminToken, `?tenant_id=${B}&limit=1000`)).items).toEqual(asItems(ofTenant(B)));
      expect((await list(h.adminToken, '?tenant_id=no-such-tenant')).items).toEqual([]);
    });

    it('paging with the cursor walks every entry exactly once, at any page size', async () => {
      for (const [token, expected] of [
        [h.adminToken, stored],
        [aRead, ofTenant(A)],
        [bRead, ofTenant(B)],
      ] as const) {
        for (const limit of [1, 2, 3, 7, expected.length - 1, expected.length, 1000]) {
          const { items, pages } = await walk(token, '', limit);
          expect(items).toEqual(asItems(expected));
          expect(new Set(items.map((i) => i.index)).size).toBe(items.length);
          expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
        }
      }
      const created = ofTenant(A).filter((e) => parse(e).event_type === 'VM_CREATED');
      expect((await walk(aRead, '?event_type=VM_CREATED', 1)).items).toEqual(asItems(created));
    });

    it('order=desc lists newest first, and its cursor pages back through every entry exactly once, at any page size and with filters', async () => {
      for (const [token, expected] of [
        [h.adminToken, stored],
        [aRead, ofTenant(A)],
        [bRead, ofTenant(B)],
      ] as const) {
        const newestFirst = asItems([...expected].reverse());
        expect((await list(token, '?order=desc&limit=1000')).items).toEqual(newestFirst);
        expect((await list(token, '?order=asc&limit=1000')).items).toEqual(asItems(expected));
        for (const limit of [1, 2, 3, 7, expected.length - 1, expected.length, 1000]) {
          const { items, pages } = await walk(token, '?order=desc', limit);
          expect(items).toEqual(newestFirst);
          expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)));
        }
      }
      const created = ofTenant(A).filter((e) => parse(e).event_type === 'VM_CREATED');
      expect(created.length).toBeGreaterThan(1);
      expect((await walk(aRead, '?event_type=VM_CREATED&order=desc', 1)).items).toEqual(asItems([...created].reverse()));
      const since = isoTime(phases[2]!);
      expect((await list(h.adminToken, `?since=${since}&order=desc&limit=3`)).items).toEqual(
        asItems(
          stored
            .filter((e) => Date.parse(parse(e).ts) >= phases[2]!)
            .reverse()
            .slice(0, 3),
        ),
      );
    });

    it("a cursor from another tenant's listing, or any index, gives a tenant only its own later entries", async () => {
      const first = await list(h.adminToken, '?limit=1');
      expect(first.next_cursor).not.toBeNull();
      expect((await list(aRead, `?cursor=${first.next_cursor}`)).items).toEqual(asItems(ofTenant(A).filter((e) => e.index > 0)));
      for (const e of stored) {
        const cursor = Buffer.from(JSON.stringify({ after: String(e.index) })).toString('base64url');
        expect((await list(bRead, `?cursor=${cursor}&limit=1000`)).items).toEqual(asItems(ofTenant(B).filter((x) => x.index > e.index)));
      }
    });

    it('filters by event type, VM, node, token and time, alone and together', async () => {
      const visible = { admin: stored, [A]: ofTenant(A), [B]: ofTenant(B) };
      const tokenFor = { admin: h.adminToken, [A]: aRead, [B]: bRead };
      const cases: [query: string, keep: (e: ParsedEntry) => boolean][] = [
        ...['TENANT_CREATED', 'TOKEN_ISSUED', 'TOKEN_REVOKED', 'VM_CREATED', 'VM_CREATE_DENIED', 'VM_STATE_CHANGED', 'VM_DELETED', 'KEY_ROTATED'].map(
          (t): [string, (e: ParsedEntry) => boolean] => [`event_type=${t}`, (e) => e.event_type === t],
        ),
        ...[...aVms, ...bVms].map((vm): [string, (e: ParsedEntry) => boolean] => [`vm_id=${vm}`, (e) => e.subject_ids.vm_id === vm]),
        [`token_id=${aAdmin.tokenId}`, (e) => e.subject_ids.token_id === aAdmin.tokenId || e.actor.token_id === aAdmin.tokenId],
        ['node_id=compute-west-01', (e) => e.subject_ids.node_id === 'compute-west-01'],
        ...phases.map((t): [string, (e: ParsedEntry) => boolean] => [`since=${isoTime(t)}`, (e) => Date.parse(e.ts) >= t]),
        ...phases.map((t): [string, (e: ParsedEntry) => boolean] => [`until=${isoTime(t)}`, (e) => Date.parse(e.ts) < t]),
        ...phases
          .slice(1)
          .map((t, i): [string, (e: ParsedEntry) => boolean] => [
            `since=${isoTime(phases[i]!)}&until=${isoTime(t)}`,
            (e) => Date.parse(e.ts) >= phases[i]! && Date.parse(e.ts) < t,
          ]),
        // The same instant with a UTC offset, and to the second only.
        [`since=${encodeURIComponent(withOffset(phases[2]!, 120))}`, (e) => Date.parse(e.ts) >= phases[2]!],
        [`until=${encodeURIComponent(withOffset(phases[2]!, -330))}`, (e) => Date.parse(e.ts) < phases[2]!],
        [`since=${isoTime(phases[2]! + 1000).slice(0, 19)}Z`, (e) => Date.parse(e.ts) >= Math.floor(phases[2]! / 1000) * 1000 + 1000],
        [`event_type=VM_CREATED&since=${isoTime(phases[2]!)}`, (e) => e.event_type === 'VM_CREATED' && Date.parse(e.ts) >= phases[2]!],
        [
          `vm_id=${aVms[0]}&event_type=VM_STATE_CHANGED&until=${isoTime(phases[3]!)}`,
          (e) => e.subject_ids.vm_id === aVms[0] && e.event_type === 'VM_STATE_CHANGED' && Date.parse(e.ts) < phases[3]!,
        ],
      ];
      let nonEmpty = 0;
      for (const [query, keep] of cases) {
        for (const who of ['admin', A, B] as const) {
          const expected = visible[who].filter((e) => keep(parse(e)));
          const page = await list(tokenFor[who], `?${query}&limit=1000`);
          expect(page.items, `${who}: ${query}`).toEqual(asItems(expected));
          if (expected.length > 0) nonEmpty++;
        }
        // A platform admin narrowing to A sees exactly what A's token sees.
        expect((await list(h.adminToken, `?${query}&tenant_id=${A}&limit=1000`)).items).toEqual((await list(aRead, `?${query}&limit=1000`)).items);
      }
      // The filters were exercised on something.
      expect(nonEmpty).toBeGreaterThan(cases.length);
      expect((await list(aRead, `?vm_id=${aVms[0]}`)).items.length).toBeGreaterThan(1);
      expect((await list(aRead, '?event_type=VM_CREATE_DENIED')).items.length).toBe(1);
      expect((await list(aRead, `?token_id=${aAdmin.tokenId}`)).items.length).toBeGreaterThan(5);
      // Another tenant's VM or token named in a filter finds nothing.
      expect((await list(aRead, `?vm_id=${bVms[0]}`)).items).toEqual([]);
      expect((await list(bRead, `?token_id=${aAdmin.tokenId}`)).items).toEqual([]);
    });
  });

  describe('checkpoints and inclusion proofs', () => {
    it('the latest checkpoint is served as signed, and opens with the ledger key', async () => {
      const res = await get('/v1/ledger/checkpoint', aRead);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      const latest = checkpoints.at(-1)!;
      expect(res.body).toBe(latest.note);
      const checkpoint = parseCheckpoint(openNote(res.body, parseVerifierKey(signer.verifierKey)));
      expect(checkpoint.size).toBe(latest.size);
      expect(checkpoint.root.equals(rootFromLeafHashes(leaves.slice(0, latest.size)))).toBe(true);
    });

    it("proofs from the API verify against every signed checkpoint's root, for every entry the caller may read", async () => {
      const key = parseVerifierKey(signer.verifierKey);
      for (const { note } of checkpoints) {
        const { size, root } = parseCheckpoint(openNote(note, key));
        for (const [token, visible] of [
          [aRead, ofTenant(A)],
          [bRead, ofTenant(B)],
          [h.adminToken, stored],
        ] as const) {
          for (const e of visible.filter((x) => x.index < size)) {
            const res = await get(`/v1/ledger/proof/inclusion?index=${e.index}&tree_size=${size}`, token);
            expect(res.statusCode, res.body).toBe(200);
            const proof = res.json<InclusionAnswer>();
            expect(proof).toMatchObject({ index: e.index, tree_size: size });
            const leaf = hashLeaf(Buffer.from(e.line));
            expect(proof.leaf_hash).toBe(leaf.toString('hex'));
            expect(proof.leaf_hash).toMatch(/^[0-9a-f]{64}$/);
            expect(verifyInclusion(e.index, size, leaf, fromHex(proof.hashes), root)).toBe(true);
            // The proof is for that leaf only.
            expect(verifyInclusion(e.index, size, hashLeaf(Buffer.from(`${e.line} `)), fromHex(proof.hashes), root)).toBe(false);
          }
        }
      }
    });

    it('proofs at every tree size verify against the root recomputed from all leaves, and match the reference', async () => {
      for (const e of ofTenant(A)) {
        for (let size = e.index + 1; size <= stored.length; size++) {
          const res = await get(`/v1/ledger/proof/inclusion?index=${e.index}&tree_size=${size}`, aRead);
          expect(res.statusCode, res.body).toBe(200);
          const proof = res.json<InclusionAnswer>();
          expect(proof.hashes).toEqual(inclusionProof(leaves, e.index, size).map((x) => x.toString('hex')));
          expect(verifyInclusion(e.index, size, leaves[e.index]!, fromHex(proof.hashes), rootFromLeafHashes(leaves.slice(0, size)))).toBe(true);
        }
      }
      // Every entry, for a platform admin, in the full tree and in a tree just big enough for it.
      for (const e of stored) {
        for (const size of new Set([e.index + 1, stored.length])) {
          const proof = (await get(`/v1/ledger/proof/inclusion?index=${e.index}&tree_size=${size}`, h.adminToken)).json<InclusionAnswer>();
          expect(verifyInclusion(e.index, size, leaves[e.index]!, fromHex(proof.hashes), rootFromLeafHashes(leaves.slice(0, size)))).toBe(true);
        }
      }
    });
  });

  describe('consistency proofs', () => {
    it('verify between every pair of several tree sizes, for any tenant, and match the reference', async () => {
      const n = stored.length;
      const sizes = [...new Set([1, 2, 3, 4, 5, 7, 8, 9, 16, ...checkpoints.map((c) => c.size), n - 1, n])].filter((s) => s >= 1 && s <= n).sort((x, y) => x - y);
      for (const from of sizes) {
        for (const to of sizes.filter((s) => s >= from)) {
          const answers = [];
          for (const token of [aRead, bRead, h.adminToken]) {
            const res = await get(`/v1/ledger/proof/consistency?from=${from}&to=${to}`, token);
            expect(res.statusCode, res.body).toBe(200);
            answers.push(res.json<ConsistencyAnswer>());
          }
          // Sizes and hashes only: the same for everyone.
          expect(answers[1]).toEqual(answers[0]);
          expect(answers[2]).toEqual(answers[0]);
          const proof = answers[0]!;
          expect(proof).toMatchObject({ from, to });
          expect(proof.hashes).toEqual(consistencyProof(leaves, from, to).map((x) => x.toString('hex')));
          const [root1, root2] = [rootFromLeafHashes(leaves.slice(0, from)), rootFromLeafHashes(leaves.slice(0, to))];
          expect(verifyConsistency(from, to, root1, root2, fromHex(proof.hashes))).toBe(true);
          if (from < to) {
            // A proof between other roots does not verify.
            expect(verifyConsistency(from, to, root1, rootFromLeafHashes(leaves.slice(0, to - 1)), fromHex(proof.hashes))).toBe(false);
          }
        }
      }
    });

    it('verify between the roots of the signed checkpoints', async () => {
      const key = parseVerifierKey(signer.verifierKey);
      const opened = checkpoints.map((c) => parseCheckpoint(openNote(c.note, key)));
      for (const [i, older] of opened.entries()) {
        for (const newer of opened.slice(i + 1)) {
          const proof = (await get(`/v1/ledger/proof/consistency?from=${older.size}&to=${newer.size}`, aRead)).json<ConsistencyAnswer>();
          expect(verifyConsistency(older.size, newer.size, older.root, newer.root, fromHex(proof.hashes))).toBe(true);
        }
      }
    });
  });

  describe("isolation: another tenant's entry is not there", () => {
    async function refused(token: string, url: string, status: number, signWith?: KeyObject): Promise<ProblemBody> {
      const before = await snapshotState(h);
      const problem = expectProblem(await h.request('GET', url, { token, ...(signWith ? { signWith } : {}) }), status);
      expect(await snapshotState(h)).toEqual(before);
      return problem;
    }

    /** The problem body without what names the request (its id, its URL, the index in the text). */
    const normalised = (problem: ProblemBody, index: number) => ({
      ...problemWithoutRequest(problem),
      detail: problem.detail.replaceAll(String(index), '<index>'),
    });

    it("a tenant asking for a proof of another tenant's entry gets the 404 a platform entry gets", async () => {
      const size = stored.length;
      const platformIndex = ofTenant(null).at(-1)!.index;
      for (const [token, others] of [
        [aRead, ofTenant(B)],
        [aAdmin.token, ofTenant(B)],
        [bRead, ofTenant(A)],
      ] as const) {
        const platformProblem = await refused(token, `/v1/ledger/proof/inclusion?index=${platformIndex}&tree_size=${size}`, 404);
        expect(platformProblem.code).toBe('not_found');
        const platform = normalised(platformProblem, platformIndex);
        for (const e of others) {
          const problem = await refused(token, `/v1/ledger/proof/inclusion?index=${e.index}&tree_size=${size}`, 404);
          expect(normalised(problem, e.index)).toEqual(platform);
          expect(problem.detail).not.toContain(A);
          expect(problem.detail).not.toContain(B);
        }
        for (const e of ofTenant(null)) {
          expect(normalised(await refused(token, `/v1/ledger/proof/inclusion?index=${e.index}&tree_size=${e.index + 1}`, 404), e.index)).toEqual(platform);
        }
      }
    });

    it('a tenant naming another tenant is refused as for a tenant that does not exist; other refusals change nothing', async () => {
      const other = await refused(aRead, `/v1/ledger/entries?tenant_id=${B}`, 403);
      const missing = await refused(aRead, '/v1/ledger/entries?tenant_id=no-such-tenant', 403);
      expect({ ...problemWithoutRequest(other) }).toEqual({ ...problemWithoutRequest(missing) });
      expect(other.code).toBe('forbidden');

      // A node agent reads no ledger; no token reads nothing.
      for (const url of ['/v1/ledger/entries', `/v1/ledger/proof/inclusion?index=1&tree_size=2`, '/v1/ledger/proof/consistency?from=1&to=2']) {
        // Signed, as node:agent tokens must be (SPEC §5), so the refusal is the scope's.
        expect((await refused(aAgent, url, 403, aAgentKey)).code).toBe('forbidden');
        const before = await snapshotState(h);
        expect(expectProblem(await get(url), 401).code).toBe('unauthenticated');
        expect(await snapshotState(h)).toEqual(before);
      }
      const n = stored.length;
      expect((await refused(aRead, `/v1/ledger/proof/inclusion?index=${n}&tree_size=${n}`, 400)).field).toBe('index');
      expect((await refused(aRead, `/v1/ledger/proof/inclusion?index=0&tree_size=${n + 1}`, 400)).field).toBe('tree_size');
      expect((await refused(aRead, `/v1/ledger/proof/consistency?from=3&to=2`, 400)).field).toBe('from');
      expect((await refused(aRead, `/v1/ledger/proof/consistency?from=1&to=${n + 1}`, 400)).field).toBe('to');
      expect((await refused(aRead, `/v1/ledger/proof/consistency?from=0&to=${n}`, 400)).field).toBe('from');
    });

    it('reading the ledger changes nothing', async () => {
      const before = await snapshotState(h);
      await list(aRead, '?limit=1000');
      await list(h.adminToken, `?tenant_id=${B}`);
      await get('/v1/ledger/checkpoint', bRead);
      await get('/v1/ledger/proof/inclusion?index=1&tree_size=2', aRead);
      await get('/v1/ledger/proof/consistency?from=1&to=2', bRead);
      expect(await snapshotState(h)).toEqual(before);
      expect(await readEntries(h.store.db, { limit: 100_000 })).toEqual(stored);
    });
  });

  describe('an app with the ledger signer', () => {
    it('serves its public key to anyone, and the checkpoint it serves verifies with that key', async () => {
      const app = await buildApp({ store: h.store, keyring: h.keyring, clock: h.clock, ledgerSigner: signer });
      try {
        for (const headers of [{}, { authorization: `Bearer ${aRead}` }, { authorization: 'Bearer garbage' }]) {
          const res = await app.inject({ method: 'GET', url: '/v1/ledger/key', headers });
          expect(res.statusCode, res.body).toBe(200);
          expect(res.headers['content-type']).toMatch(/^text\/plain/);
          expect(res.body).toBe(`${signer.verifierKey}\n`);
        }
        const key = parseVerifierKey((await app.inject({ method: 'GET', url: '/v1/ledger/key' })).body);
        const note = await app.inject({ method: 'GET', url: '/v1/ledger/checkpoint', headers: { authorization: `Bearer ${bRead}` } });
        expect(note.statusCode).toBe(200);
        const { size, root } = parseCheckpoint(openNote(note.body, key));
        for (const e of ofTenant(B).filter((x) => x.index < size)) {
          const res = await app.inject({
            method: 'GET',
            url: `/v1/ledger/proof/inclusion?index=${e.index}&tree_size=${size}`,
            headers: { authorization: `Bearer ${bRead}` },
          });
          const proof = res.json<InclusionAnswer>();
          expect(verifyInclusion(e.index, size, hashLeaf(Buffer.from(e.line)), fromHex(proof.hashes), root)).toBe(true);
        }
      } finally {
        await app.close();
      }
    });
  });
});

describe('the ledger API before any checkpoint, and without a signer', () => {
  let h: Harness;
  let aRead: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A);
    aRead = (await h.issueToken(A, 'tenant:read')).token;
  });
  afterAll(async () => {
    await h.close();
  });

  it('the checkpoint and the key are 404s, and proofs are still served', async () => {
    const before = await snapshotState(h);
    expect(expectProblem(await h.request('GET', '/v1/ledger/checkpoint', { token: aRead }), 404).code).toBe('not_found');
    expect(expectProblem(await h.request('GET', '/v1/ledger/key'), 404).code).toBe('not_found');
    expect(expectProblem(await h.request('GET', '/v1/ledger/checkpoint'), 401).code).toBe('unauthenticated');
    expect(await snapshotState(h)).toEqual(before);
    const lines = await readEntries(h.store.db, { limit: 100 });
    const leaves = lines.map((e) => hashLeaf(Buffer.from(e.line)));
    const proof = (await h.request('GET', `/v1/ledger/proof/inclusion?index=1&tree_size=${lines.length}`, { token: aRead })).json<InclusionAnswer>();
    expect(verifyInclusion(1, lines.length, leaves[1]!, fromHex(proof.hashes), rootFromLeafHashes(leaves))).toBe(true);
  });
});

describe("another tenant's entry answers exactly like a missing one", () => {
  let h: Harness;
  let aRead: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A);
    await h.createTenant(B);
    aRead = (await h.issueToken(A, 'tenant:read')).token;
    await h.issueToken(B, 'tenant:read');
    await h.issueToken(A, 'tenant:read');
  });
  afterAll(async () => {
    await h.close();
  });

  it("the same index, B's entry and then no entry at all, gives A the same answer", async () => {
    // In a sound ledger every index below the tree size has an entry, so a missing one is made the
    // way an attacker would: the WORM trigger dropped and the row deleted.
    const size = await h.ledgerCount();
    const bEntry = (await readEntries(h.store.db, { tenantId: B, limit: 100 })).at(-1)!;
    const url = `/v1/ledger/proof/inclusion?index=${bEntry.index}&tree_size=${size}`;
    expect((await h.request('GET', url, { token: h.adminToken })).statusCode).toBe(200);
    const forB = await h.request('GET', url, { token: aRead });

    await dropEntryWorm(h);
    await h.store.db.deleteFrom('ledger_entries').where('idx', '=', bEntry.index).execute();
    const forMissing = await h.request('GET', url, { token: aRead });
    const forMissingAsAdmin = await h.request('GET', url, { token: h.adminToken });

    const b = expectProblem(forB, 404);
    expect(problemWithoutRequest(b)).toEqual(problemWithoutRequest(expectProblem(forMissing, 404)));
    expect(problemWithoutRequest(b)).toEqual(problemWithoutRequest(expectProblem(forMissingAsAdmin, 404)));
    expect(forB.headers['content-type']).toBe(forMissing.headers['content-type']);
  });
});

describe('entries stored in an encoding the server would not write', () => {
  let h: Harness;
  let aRead: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A);
    aRead = (await h.issueToken(A, 'tenant:read')).token;
  });
  afterAll(async () => {
    await h.close();
  });

  it('leaf_input is the stored bytes even where re-encoding the entry would change them', async () => {
    // The server writes canonical JSON.stringify lines, so re-encoding its own entries changes nothing.
    // A line stored in another encoding (an escaped "é", a space) must still come back as stored, or
    // its leaf hash would not be the one the tree holds.
    const index = await h.ledgerCount();
    const line = `{"index":${index}, "ts":"2026-01-01T00:00:00.000Z","event_type":"VM_CREATED","tenant_id":"${A}","actor":{"token_id":null,"subject":"caf\\u00e9 é","scope":[]},"request_id":null,"subject_ids":{},"data":{}}`;
    expect(JSON.stringify(JSON.parse(line))).not.toBe(line);
    await insertEntryRow(h.store, index, line, A);
    await integrateEntries(h.store);

    const page = (await h.request('GET', `/v1/ledger/entries?event_type=VM_CREATED`, { token: aRead })).json<EntriesPage>();
    expect(page.items).toEqual([{ index, leaf_input: line, entry: JSON.parse(line) }]);
    const proof = (await h.request('GET', `/v1/ledger/proof/inclusion?index=${index}&tree_size=${index + 1}`, { token: aRead })).json<InclusionAnswer>();
    const leaves = (await readEntries(h.store.db, { limit: 100 })).map((e) => hashLeaf(Buffer.from(e.line)));
    expect(proof.leaf_hash).toBe(hashLeaf(Buffer.from(page.items[0]!.leaf_input)).toString('hex'));
    expect(verifyInclusion(index, index + 1, Buffer.from(proof.leaf_hash, 'hex'), fromHex(proof.hashes), rootFromLeafHashes(leaves))).toBe(true);
  });
});

describe('entries sequenced but not yet in the tree', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A, { max_vms: 0 });
  });
  afterAll(async () => {
    await h.close();
  });

  it('a proof at a size the tree has not reached yet is a 409 saying to retry in a second, until the leader integrates', async () => {
    const integrated = await h.ledgerCount();
    // Straight to the app: the harness's request() would stand in for the leader and integrate.
    for (let i = 0; i < 3; i++) {
      const res = await h.app.inject({
        method: 'POST',
        url: '/v1/vms',
        headers: { authorization: `Bearer ${h.adminToken}` },
        payload: { name: 'refused' },
        query: { tenant_id: A },
      });
      expect(res.statusCode, res.body).toBe(429);
      expect(res.json<{ ledger_index: number }>().ledger_index).toBe(integrated + i);
    }
    const n = integrated + 3;
    const before = await snapshotState(h);
    for (const url of [`/v1/ledger/proof/inclusion?index=0&tree_size=${n}`, `/v1/ledger/proof/consistency?from=1&to=${n}`]) {
      const res = await h.request('GET', url, { token: h.adminToken });
      const problem = expectProblem(res, 409);
      expect(problem.code).toBe('ledger_not_integrated');
      expect(problem.tree_size).toBe(integrated);
      expect(problem.detail).toMatch(/retry/);
      expect(res.headers['retry-after']).toBe('1');
    }
    // What the tree covers is served meanwhile; a size past every entry is still bad input.
    expect((await h.request('GET', `/v1/ledger/proof/inclusion?index=0&tree_size=${integrated}`, { token: h.adminToken })).statusCode).toBe(200);
    expect(expectProblem(await h.request('GET', `/v1/ledger/proof/inclusion?index=0&tree_size=${n + 1}`, { token: h.adminToken }), 400).field).toBe('tree_size');
    expect(await snapshotState(h)).toEqual(before);

    await integrateEntries(h.store);
    const proof = await h.request('GET', `/v1/ledger/proof/inclusion?index=${n - 1}&tree_size=${n}`, { token: h.adminToken });
    expect(proof.statusCode, proof.body).toBe(200);
    const leaves = (await readEntries(h.store.db, { limit: 1000 })).map((e) => hashLeaf(Buffer.from(e.line)));
    expect(verifyInclusion(n - 1, n, leaves[n - 1]!, fromHex(proof.json<InclusionAnswer>().hashes), rootFromLeafHashes(leaves))).toBe(true);
  });
});
