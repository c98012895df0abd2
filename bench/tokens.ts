/**
 * `npm run bench:tokens` (also part of `npm run bench`): a capability token verified as the server
 * verifies it on every request (issue 9), beside one raw `node:crypto` Ed25519 verify in the same run.
 *
 *   - uncached: a token this server has not seen, through the server's own verifier
 *     (cachedTokenVerifier, src/api/plugins/auth.ts) on a cache miss: SHA-256 of the text, the
 *     lookup, then verifyToken (parse, every block's signature against the live platform keyring or
 *     the parent's holder key, narrowing of scopes, expiry and limits), then the revocation check of
 *     every block of the chain, as the request hook does it. Chains of 1, 3 and 8 blocks.
 *   - cached: the same token again: SHA-256, lookup, the root key still in the keyring, expiry,
 *     revocation check.
 *   - what a `pop` request adds: verifyRequestSignature over GET /v1/vms (components, `created`,
 *     keyid, one Ed25519 verify, the nonce recorded in the SQLite server's in-memory nonce record).
 *   - baseline: one crypto.verify of the root block's signature over its signing input, the platform
 *     public key already a KeyObject: the cheapest honest single verify.
 *
 * Not included: the tenant row read and the rate limiter (store work every request pays whatever the
 * token; the HTTP benchmark in bench/run.ts measures them).
 *
 * Every case runs once a round, in an order rotated each round, for BENCH_TOKEN_SLICE seconds; a
 * case's ratio to the raw verify is taken per round, and the figures are medians of the rounds.
 * Options: BENCH_ROUNDS (default 5), BENCH_TOKEN_SLICE (default 0.5 s), BENCH_TOKEN_REVOKED (revoked
 * ids held by the revocation list, default 1000).
 */
import { randomBytes, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cachedTokenVerifier } from '../src/api/plugins/auth.js';
import { openNonceRecord } from '../src/api/nonce-record.js';
import { makeIdSource, systemClock } from '../src/clock.js';
import { openWritableStore } from '../src/cli/common.js';
import { preparePlatformKeys } from '../src/cli/keys.js';
import { initDataDir } from '../src/config/data-dir.js';
import { RevocationList } from '../src/control/revocations.js';
import { createTenant } from '../src/control/tenants.js';
import { issueToken } from '../src/control/tokens.js';
import { signRequest } from '../src/httpsig/sign.js';
import { verifyRequestSignature } from '../src/httpsig/verify.js';
import { LOCAL_OPERATOR } from '../src/ledger/entry.js';
import { parseToken, rootSigningInput, type TokenLimits } from '../src/tokens/format.js';
import { encodeBase64url, generateKeyPair, publicKeyFromRaw, rawPublicKey, type KeyPair } from '../src/tokens/keys.js';
import { delegateToken, mintRootToken } from '../src/tokens/mint.js';
import type { PlatformKeyring } from '../src/tokens/keyring.js';
import type { Scope } from '../src/tokens/scopes.js';
import type { VerifiedToken } from '../src/tokens/verify.js';
import type { Store } from '../src/store/store.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SLICE_SECONDS = Number(process.env.BENCH_TOKEN_SLICE ?? 0.5);
const REVOKED = Number(process.env.BENCH_TOKEN_REVOKED ?? 1000);
const TENANT = 'bench-tokens';
const CHAIN_LENGTHS = [1, 3, 8] as const;
/** Scopes and limits of blocks 1..7: each narrows the one before, as a delegation must. */
const DELEGATED: readonly { scp: Scope[]; lim: TokenLimits }[] = [
  { scp: ['tenant:input'], lim: { max_vms: 64 } },
  { scp: ['tenant:user'], lim: { max_vms: 32 } },
  { scp: ['tenant:user'], lim: { max_vms: 16 } },
  { scp: ['tenant:read'], lim: { max_vms: 8 } },
  { scp: ['tenant:read'], lim: { max_vms: 4 } },
  { scp: ['tenant:read'], lim: { max_vms: 2 } },
  { scp: ['tenant:read'], lim: { max_vms: 1 } },
];

interface Case {
  name: string;
  /** Runs the operation n times; async only where the server awaits too. */
  run(n: number): void | Promise<void>;
  /** Called before each timed slice with the number of operations it will run. */
  prepare?(n: number): void;
}

interface Sample {
  wallNs: number;
  cpuNs: number;
  ops: number;
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function timeSlice(subject: Case, n: number): Promise<Sample> {
  subject.prepare?.(n);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await subject.run(n);
  const wallNs = Number(process.hrtime.bigint() - start);
  const used = process.cpuUsage(cpu);
  return { wallNs, cpuNs: (used.user + used.system) * 1000, ops: n };
}

/** How many operations fill one slice, from a short warm-up run (which also lets V8 optimise). */
async function calibrate(subject: Case): Promise<number> {
  let n = 16;
  for (;;) {
    const sample = await timeSlice(subject, n);
    if (sample.wallNs > 100e6) return Math.max(1, Math.round((n * SLICE_SECONDS * 1e9) / sample.wallNs));
    n *= 4;
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Setup {
  store: Store;
  keyring: PlatformKeyring;
  /** Chain length → token: a `pop` root, then blocks delegated from it one by one. */
  chains: Map<number, string>;
  /** holders[i] holds block i. */
  holders: KeyPair[];
  cleanUp(): Promise<void>;
}

/** A tenant with a `pop` root token and chains of 1 to 8 blocks delegated from it, in a fresh data directory. */
async function setUp(): Promise<Setup> {
  const home = mkdtempSync(join(tmpdir(), 'ppn-bench-tokens-'));
  const dataDir = join(home, '.ppn');
  initDataDir(dataDir);
  const store = await openWritableStore(dataDir);
  // The server's own keyring: the platform key set in the store, followed live.
  const { keyring } = await preparePlatformKeys(store, dataDir);
  const deps = { store, clock: systemClock, ids: makeIdSource(systemClock) };
  const origin = { actor: LOCAL_OPERATOR, requestId: null };
  await createTenant(deps, origin, {
    tenant_id: TENANT,
    display_name: TENANT,
    max_vms: 100,
    storage_quota_gb: 1000,
    api_rate_limit_rpm: 6000,
    max_vcpus: null,
    max_memory_mb: null,
  });
  const holders = Array.from({ length: 8 }, () => generateKeyPair());
  const publicText = (pair: KeyPair): string => encodeBase64url(rawPublicKey(pair.publicKey));
  const { token: root } = await issueToken(deps, keyring, origin, {
    tenantId: TENANT,
    subjectPubkey: publicText(holders[0]!),
    scopes: ['service:tenant-admin'],
    expiresInSeconds: 3600,
    limits: { max_vms: 100 },
    proofOfPossession: true,
    issuedBy: null,
    name: 'bench root',
  });
  const chains = new Map<number, string>([[1, root]]);
  let token = root;
  const iat = Math.floor(Date.now() / 1000);
  for (let i = 1; i < 8; i++) {
    const { scp, lim } = DELEGATED[i - 1]!;
    token = delegateToken(token, holders[i - 1]!.privateKey, { sub: publicText(holders[i]!), scp, lim, iat, exp: iat + 3000 - i });
    chains.set(i + 1, token);
  }
  const cleanUp = async (): Promise<void> => {
    await store.close();
    rmSync(home, { recursive: true, force: true });
  };
  return { store, keyring, chains, holders, cleanUp };
}

function buildCases(setup: Setup): Case[] {
  const { keyring, chains, holders, store } = setup;
  const revocations = new RevocationList();
  revocations.add(
    TENANT,
    Array.from({ length: REVOKED }, () => `tok-${randomBytes(13).toString('hex')}`),
  );
  // The request hook's check: every block of the chain against the revocation list.
  const admit = (text: string, verifier: (text: string, now: number) => VerifiedToken): void => {
    const token = verifier(text, Date.now());
    if (
      revocations.anyRevoked(
        token.tenantId,
        token.chain.map((link) => link.jti),
      )
    )
      throw new Error('revoked');
  };

  const root = parseToken(chains.get(1)!)[0]!;
  const rootInput = rootSigningInput(root.payload);
  const platformKey = keyring.publicKey(root.claims.kid!)!;
  const raw: Case = {
    name: 'raw node:crypto Ed25519 verify (baseline)',
    run(n) {
      for (let i = 0; i < n; i++) if (!verify(null, rootInput, platformKey, root.signature)) throw new Error('raw verify failed');
    },
  };

  // Not a step of its own on the request path: what each delegated block and each pop request pays
  // to turn a holder's 32 key bytes into a KeyObject before it can verify (OpenSSL's SPKI decoder).
  const holderBytes = rawPublicKey(holders[0]!.publicKey);
  const keyDecode: Case = {
    name: 'of which: a holder key decoded from its 32 bytes (publicKeyFromRaw)',
    run(n) {
      for (let i = 0; i < n; i++) publicKeyFromRaw(holderBytes);
    },
  };

  const uncached = CHAIN_LENGTHS.map((length): Case => ({
    name: `${length}-block chain, uncached`,
    run(n) {
      const text = chains.get(length)!;
      // A fresh verifier each time: the server's cache-miss path, as for a token seen for the first time.
      for (let i = 0; i < n; i++) admit(text, cachedTokenVerifier(keyring));
    },
  }));
  // The holder keys are kept once imported (holderPublicKey), so the rows above, which verify the same
  // chain again and again, import none. This row pays every import: each operation verifies a 3-block
  // chain whose root and both delegated blocks are held by keys never seen before (made in prepare).
  let coldChains: string[] = [];
  const coldThree: Case = {
    name: '3-block chain, uncached, every holder key new',
    prepare(n) {
      const iat = Math.floor(Date.now() / 1000);
      const text = (pair: KeyPair): string => encodeBase64url(rawPublicKey(pair.publicKey));
      coldChains = Array.from({ length: n }, () => {
        const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
        const jti = `tok-${randomBytes(13).toString('hex')}`;
        let token = mintRootToken(
          { kid: keyring.activeKid, tid: TENANT, sub: text(a), scp: ['service:tenant-admin'], iat, exp: iat + 3600, jti, lim: { max_vms: 100 }, pop: true },
          keyring.activeKey,
        );
        token = delegateToken(token, a.privateKey, { sub: text(b), ...DELEGATED[0]!, iat, exp: iat + 3000 });
        return delegateToken(token, b.privateKey, { sub: text(c), ...DELEGATED[1]!, iat, exp: iat + 2000 });
      });
    },
    run(n) {
      for (let i = 0; i < n; i++) admit(coldChains[i]!, cachedTokenVerifier(keyring));
    },
  };
  const cached = CHAIN_LENGTHS.map((length): Case => {
    const verifier = cachedTokenVerifier(keyring);
    const text = chains.get(length)!;
    admit(text, verifier);
    return {
      name: `${length}-block chain, cached`,
      run(n) {
        for (let i = 0; i < n; i++) admit(text, verifier);
      },
    };
  });

  // Signed the way a client signs (src/httpsig/sign.ts), ahead of the slice and outside its time.
  const holder = holders[0]!;
  const holderKey = encodeBase64url(rawPublicKey(holder.publicKey));
  const acceptNonce = openNonceRecord(store, systemClock).accept;
  let signed: Record<string, string>[] = [];
  const requestSignature: Case = {
    name: 'RFC 9421 request signature (pop), GET /v1/vms',
    prepare(n) {
      signed = Array.from({ length: n }, () => signRequest({ method: 'GET', path: '/v1/vms', query: '' }, { privateKey: holder.privateKey, clock: systemClock }));
    },
    async run(n) {
      for (let i = 0; i < n; i++) {
        await verifyRequestSignature({ method: 'GET', path: '/v1/vms', query: '', headers: signed[i]! }, { holderKey, clock: systemClock, acceptNonce });
      }
    },
  };
  return [raw, ...uncached, coldThree, ...cached, requestSignature, keyDecode];
}

interface Figures {
  name: string;
  wallNs: number;
  cpuNs: number;
  ratio: number;
  ratios: number[];
  /** The same ratio in CPU time, steadier than wall time when other processes share the cores. */
  cpuRatio: number;
}

function table(figures: Figures[]): string {
  const header = '| measurement | µs/op | ops/s | CPU µs/op | × raw verify | rounds (× raw) | × raw in CPU time |\n|---|---:|---:|---:|---:|---|---:|';
  const rows = figures.map((f) => {
    const spread = f.ratios.map((r) => r.toFixed(2)).join(', ');
    return `| ${f.name} | ${(f.wallNs / 1000).toFixed(2)} | ${Math.round(1e9 / f.wallNs).toLocaleString('en')} | ${(f.cpuNs / 1000).toFixed(2)} | ${f.ratio.toFixed(2)}× | ${spread} | ${f.cpuRatio.toFixed(2)}× |`;
  });
  return [header, ...rows].join('\n');
}

export async function runTokenBench(): Promise<void> {
  const loadBefore = loadavg()[0]!;
  const setup = await setUp();
  try {
    const cases = buildCases(setup);
    log(`token bench: calibrating ${cases.length} cases...`);
    const counts: number[] = [];
    for (const subject of cases) counts.push(await calibrate(subject));
    const samples: Sample[][] = cases.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      log(`token bench: round ${round + 1} of ${ROUNDS}`);
      for (let k = 0; k < cases.length; k++) {
        const i = (k + round) % cases.length;
        samples[i]!.push(await timeSlice(cases[i]!, counts[i]!));
      }
    }
    const perOp = (s: Sample): number => s.wallNs / s.ops;
    const figures = cases.map((subject, i): Figures => {
      const ratios = samples[i]!.map((s, round) => perOp(s) / perOp(samples[0]![round]!));
      return {
        name: subject.name,
        wallNs: median(samples[i]!.map(perOp)),
        cpuNs: median(samples[i]!.map((s) => s.cpuNs / s.ops)),
        ratio: median(ratios),
        ratios,
        cpuRatio: median(samples[i]!.map((s, round) => s.cpuNs / s.ops / (samples[0]![round]!.cpuNs / samples[0]![round]!.ops))),
      };
    });
    const three = figures.find((f) => f.name === '3-block chain, uncached')!;
    process.stdout.write(`\n${new Date().toISOString()} — tokens — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`);
    process.stdout.write(`load average (1 min) ${loadBefore.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end; `);
    process.stdout.write(`${ROUNDS} rounds of ${SLICE_SECONDS} s a case; revocation list of ${REVOKED} ids\n\n`);
    process.stdout.write(`${table(figures)}\n\n`);
    const verdict = Math.max(three.ratio, three.cpuRatio) <= 3.5 ? 'met' : three.ratio <= 3.5 || three.cpuRatio <= 3.5 ? 'met on one measure only' : 'not met';
    process.stdout.write(
      `uncached 3-block chain / one raw verify: ${three.ratio.toFixed(2)}× in wall time, ${three.cpuRatio.toFixed(2)}× in CPU time (goal ≤ 3.5×: ${verdict})\n`,
    );
    const cold = figures.find((f) => f.name === '3-block chain, uncached, every holder key new')!;
    process.stdout.write(`the same with every holder key new: ${cold.ratio.toFixed(2)}× in wall time, ${cold.cpuRatio.toFixed(2)}× in CPU time\n`);
  } finally {
    await setup.cleanUp();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await runTokenBench();
