/**
 * Sub-quotas as a property (SPEC §5, §6), at the control layer over the real store (SQLite, or
 * PostgreSQL with PPN_TEST_STORE=postgres). Random trees of real tokens, each delegated block with
 * limits nested inside its parent's, verified by the real verifier, then random sequences of creates
 * (one at a time and in concurrent bursts) and deletes under random blocks. After every step:
 *
 * - no block's stored usage exceeds any of its limits;
 * - each block's stored usage equals the sum over the live VMs whose chain names it (so deletes free
 *   usage in every block of the chain);
 * - a create made alone is refused exactly when it would take some block of its chain past a limit,
 *   and the refusal names the first such block, root first.
 */
import { createPublicKey } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeIdSource } from '../../src/clock.js';
import type { ControlDeps, Origin } from '../../src/control/context.js';
import { createVm, deleteVm, type Creator } from '../../src/control/vms.js';
import { PpnError } from '../../src/errors.js';
import { LOCAL_OPERATOR } from '../../src/ledger/entry.js';
import { QUOTA_POLICIES, type Usage } from '../../src/quota/quota.js';
import { readBlockUsage } from '../../src/store/token-blocks.js';
import { LIMIT_KEYS, type TokenLimits } from '../../src/tokens/format.js';
import { encodeBase64url, generateKeyPair, rawPublicKey, type KeyPair } from '../../src/tokens/keys.js';
import { delegateToken, mintRootToken } from '../../src/tokens/mint.js';
import { verifyToken, type VerifiedToken } from '../../src/tokens/verify.js';
import { startHarness, type Harness } from '../support/harness.js';

const RESOURCE: Record<(typeof QUOTA_POLICIES)[number], keyof Usage> = {
  max_vms: 'vms',
  storage_quota_gb: 'storage_gb',
  max_vcpus: 'vcpus',
  max_memory_mb: 'memory_mb',
};
const ZERO: Usage = { vms: 0, storage_gb: 0, vcpus: 0, memory_mb: 0 };

/** A block of the tree: its parent (null for the root) and the limits it adds or narrows. */
interface BlockPlan {
  parent: number | null;
  limits: TokenLimits;
}

type Step =
  | { kind: 'create'; block: number; vcpus: number; memory_mb: number; disk_gb: number }
  | { kind: 'burst'; block: number; count: number }
  | { kind: 'delete'; pick: number };

const limitArb = (key: (typeof LIMIT_KEYS)[number]) =>
  key === 'max_vms' ? fc.integer({ min: 0, max: 6 }) : key === 'max_memory_mb' ? fc.integer({ min: 0, max: 8192 }) : fc.integer({ min: 0, max: 24 });

const someLimitsArb: fc.Arbitrary<TokenLimits> = fc.record(
  { max_vms: limitArb('max_vms'), storage_quota_gb: limitArb('storage_quota_gb'), max_vcpus: limitArb('max_vcpus'), max_memory_mb: limitArb('max_memory_mb') },
  { requiredKeys: [] },
);

/** Up to 7 blocks: the root, then each a child of an earlier one at most 3 deep. */
const treeArb: fc.Arbitrary<BlockPlan[]> = fc
  .tuple(
    someLimitsArb,
    fc.array(fc.tuple(fc.nat(), someLimitsArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 4, maxLength: 4 })), { maxLength: 6 }),
  )
  .map(([rootLimits, children]) => {
    const plans: BlockPlan[] = [{ parent: null, limits: rootLimits }];
    const depth = [0];
    for (const [parentPick, extra, shrink] of children) {
      const candidates = plans.map((_, i) => i).filter((i) => depth[i]! < 3);
      const parent = candidates[parentPick % candidates.length]!;
      // A child keeps every limit of its parent, each no higher, and may add its own.
      const limits: TokenLimits = { ...extra };
      LIMIT_KEYS.forEach((key, k) => {
        const cap = plans[parent]!.limits[key];
        if (cap !== undefined) limits[key] = Math.floor(cap * shrink[k]!);
      });
      plans.push({ parent, limits });
      depth.push(depth[parent]! + 1);
    }
    return plans;
  });

const stepArb = (blocks: number): fc.Arbitrary<Step> =>
  fc.oneof(
    fc.record({
      kind: fc.constant('create' as const),
      block: fc.integer({ min: 0, max: blocks - 1 }),
      vcpus: fc.integer({ min: 1, max: 6 }),
      memory_mb: fc.integer({ min: 64, max: 3000 }),
      disk_gb: fc.integer({ min: 1, max: 8 }),
    }),
    fc.record({ kind: fc.constant('burst' as const), block: fc.integer({ min: 0, max: blocks - 1 }), count: fc.integer({ min: 2, max: 6 }) }),
    fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  );

const scenarioArb = treeArb.chain((tree) => fc.tuple(fc.constant(tree), fc.array(stepArb(tree.length), { minLength: 1, maxLength: 25 })));

describe('sub-quotas over random nested limits and create/delete sequences', () => {
  let h: Harness;
  let deps: ControlDeps;
  const origin: Origin = { actor: LOCAL_OPERATOR, requestId: null };
  let tenantCount = 0;

  beforeAll(async () => {
    h = await startHarness();
    deps = { store: h.store, clock: h.clock, ids: makeIdSource(h.clock) };
  });
  afterAll(async () => {
    await h.close();
  });

  /** Real tokens for the planned tree: a pop root signed by the platform key, then delegations. */
  function mintTree(tenantId: string, plans: BlockPlan[]): VerifiedToken[] {
    const iat = Math.floor(h.clock.now() / 1000);
    const holders: KeyPair[] = plans.map(() => generateKeyPair());
    const sub = (i: number) => encodeBase64url(rawPublicKey(holders[i]!.publicKey));
    const texts: string[] = [];
    plans.forEach((plan, i) => {
      const claims = { sub: sub(i), scp: ['tenant:input' as const], iat, exp: iat + 3600, lim: plan.limits };
      texts.push(
        plan.parent === null
          ? mintRootToken({ ...claims, kid: h.keyring.activeKid, tid: tenantId, jti: `tok-root-${tenantId}`, pop: true }, h.keyring.activeKey)
          : delegateToken(texts[plan.parent]!, holders[plan.parent]!.privateKey, claims),
      );
    });
    const platformKey = createPublicKey(h.keyring.activeKey);
    return texts.map((text) => verifyToken(text, { platformKey: (kid) => (kid === h.keyring.activeKid ? platformKey : undefined), now: h.clock.now() }));
  }

  it('no block ever exceeds its limits, usage matches the live VMs, and lone creates are refused exactly when they would exceed', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async ([plans, steps]) => {
        const tenantId = `nested-${++tenantCount}`;
        await h.createTenant(tenantId, { max_vms: 100_000, storage_quota_gb: 1_000_000 });
        const tokens = mintTree(tenantId, plans);
        const blockIds = tokens.map((t) => t.tokenId);
        const limitsOf = new Map(tokens.map((t) => [t.tokenId, t.chain[t.chain.length - 1]!.lim ?? {}]));
        const live: { vmId: string; chain: string[]; usage: Usage }[] = [];
        let serial = 0;

        const modelUsage = (blockId: string): Usage =>
          live
            .filter((vm) => vm.chain.includes(blockId))
            .reduce(
              (sum, vm) => ({
                vms: sum.vms + 1,
                storage_gb: sum.storage_gb + vm.usage.storage_gb,
                vcpus: sum.vcpus + vm.usage.vcpus,
                memory_mb: sum.memory_mb + vm.usage.memory_mb,
              }),
              ZERO,
            );

        /** The first block of the chain, root first, that `request` would take past a limit. */
        const expectedRefusal = (token: VerifiedToken, request: Usage): string | null => {
          for (const link of token.chain) {
            const used = modelUsage(link.jti);
            if (QUOTA_POLICIES.some((p) => link.lim?.[p] !== undefined && used[RESOURCE[p]] + request[RESOURCE[p]] > link.lim[p])) return link.jti;
          }
          return null;
        };

        const attempt = async (token: VerifiedToken, spec: { vcpus: number; memory_mb: number; disk_gb: number }) => {
          const creator: Creator = { tokenId: token.tokenId, chain: token.chain };
          try {
            const vm = await createVm(deps, origin, tenantId, { name: `vm-${++serial}`, image: null, node_id: null, ...spec }, creator);
            live.push({
              vmId: vm.vm_id,
              chain: token.chain.map((l) => l.jti),
              usage: { vms: 1, storage_gb: spec.disk_gb, vcpus: spec.vcpus, memory_mb: spec.memory_mb },
            });
            return null;
          } catch (error) {
            if (!(error instanceof PpnError) || error.code !== 'quota_exceeded') throw error;
            const policies = error.extensions['violated-policies'] as string[];
            expect(policies.every((p) => p.startsWith('token:'))).toBe(true);
            return error.extensions.block_id as string;
          }
        };

        for (const step of steps) {
          if (step.kind === 'create') {
            const token = tokens[step.block]!;
            const spec = { vcpus: step.vcpus, memory_mb: step.memory_mb, disk_gb: step.disk_gb };
            const expected = expectedRefusal(token, { vms: 1, storage_gb: spec.disk_gb, vcpus: spec.vcpus, memory_mb: spec.memory_mb });
            expect(await attempt(token, spec)).toBe(expected);
          } else if (step.kind === 'burst') {
            const token = tokens[step.block]!;
            await Promise.all(Array.from({ length: step.count }, () => attempt(token, { vcpus: 1, memory_mb: 256, disk_gb: 1 })));
          } else if (live.length > 0) {
            const [vm] = live.splice(step.pick % live.length, 1);
            await deleteVm(deps, origin, tenantId, vm!.vmId);
          }

          const stored = await readBlockUsage(h.store.db, tenantId, blockIds);
          for (const blockId of blockIds) {
            const usage = stored.get(blockId)!;
            expect(usage).toEqual(modelUsage(blockId));
            const limits = limitsOf.get(blockId)!;
            for (const policy of QUOTA_POLICIES) {
              if (limits[policy] !== undefined) expect(usage[RESOURCE[policy]]).toBeLessThanOrEqual(limits[policy]);
            }
          }
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});
