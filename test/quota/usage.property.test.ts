/**
 * Kept usage as a property (SPEC §6, docs/design/quotas-and-rate-limits.md), at the control layer
 * over the real store (SQLite, or PostgreSQL with PPN_TEST_STORE=postgres). Random sequences of
 * creates (alone and in concurrent bursts, with and without a token chain whose blocks carry random
 * limits), deletes of pending VMs (gone at once), placements, deletes of placed VMs (they keep
 * counting while `deleting`), a node reporting such a VM gone, and a tenant's cascade delete. After
 * every step each tenant's stored usage and each block's equal a recomputation from the VM rows, and
 * the usage audit finds nothing.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeIdSource } from '../../src/clock.js';
import type { ControlDeps, Origin } from '../../src/control/context.js';
import { deleteTenant } from '../../src/control/tenants.js';
import { findUsageDrift } from '../../src/control/usage-audit.js';
import { changeVmState, createVm, deleteVm, removeVm, type Creator } from '../../src/control/vms.js';
import { PpnError } from '../../src/errors.js';
import { LOCAL_OPERATOR } from '../../src/ledger/entry.js';
import type { Usage } from '../../src/quota/quota.js';
import { inTransaction } from '../../src/store/store.js';
import { findTenant } from '../../src/store/tenants.js';
import { readBlockUsage } from '../../src/store/token-blocks.js';
import { findVm, listVmRows, tokenChainOf, usageOf, type VmRow } from '../../src/store/vms.js';
import type { TokenLimits } from '../../src/tokens/format.js';
import { RevocationList } from '../../src/control/revocations.js';
import { startHarness, type Harness } from '../support/harness.js';

const ZERO: Usage = { vms: 0, storage_gb: 0, vcpus: 0, memory_mb: 0 };

type Step =
  | { kind: 'create'; tenant: number; chain: number; vcpus: number; memory_mb: number; disk_gb: number }
  | { kind: 'burst'; tenant: number; chain: number; count: number }
  | { kind: 'delete'; pick: number }
  | { kind: 'place'; pick: number }
  | { kind: 'gone'; pick: number };

const limitsArb: fc.Arbitrary<TokenLimits> = fc.record(
  {
    max_vms: fc.integer({ min: 0, max: 8 }),
    storage_quota_gb: fc.integer({ min: 0, max: 40 }),
    max_vcpus: fc.integer({ min: 0, max: 30 }),
    max_memory_mb: fc.integer({ min: 0, max: 10_000 }),
  },
  { requiredKeys: [] },
);

const pick = fc.nat();
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('create' as const),
    tenant: fc.integer({ min: 0, max: 1 }),
    // 0: no token chain; 1..3: the first 1..3 blocks of the tenant's chain.
    chain: fc.integer({ min: 0, max: 3 }),
    vcpus: fc.integer({ min: 1, max: 6 }),
    memory_mb: fc.integer({ min: 64, max: 3000 }),
    disk_gb: fc.integer({ min: 1, max: 8 }),
  }),
  fc.record({
    kind: fc.constant('burst' as const),
    tenant: fc.integer({ min: 0, max: 1 }),
    chain: fc.integer({ min: 0, max: 3 }),
    count: fc.integer({ min: 2, max: 6 }),
  }),
  fc.record({ kind: fc.constant('delete' as const), pick }),
  fc.record({ kind: fc.constant('place' as const), pick }),
  fc.record({ kind: fc.constant('gone' as const), pick }),
);

const scenarioArb = fc.record({
  tenantLimits: fc.array(fc.record({ max_vms: fc.integer({ min: 0, max: 12 }), storage_quota_gb: fc.integer({ min: 0, max: 60 }) }), {
    minLength: 2,
    maxLength: 2,
  }),
  blockLimits: fc.array(fc.option(limitsArb, { nil: undefined }), { minLength: 3, maxLength: 3 }),
  steps: fc.array(stepArb, { minLength: 1, maxLength: 30 }),
  cascadeDelete: fc.boolean(),
});

function add(sum: Usage, vm: Pick<VmRow, 'disk_gb' | 'vcpus' | 'memory_mb'>): Usage {
  return { vms: sum.vms + 1, storage_gb: sum.storage_gb + vm.disk_gb, vcpus: sum.vcpus + vm.vcpus, memory_mb: sum.memory_mb + vm.memory_mb };
}

describe('kept usage over random VM changes', () => {
  let h: Harness;
  let deps: ControlDeps;
  const origin: Origin = { actor: LOCAL_OPERATOR, requestId: null };
  let runs = 0;

  beforeAll(async () => {
    h = await startHarness();
    deps = { store: h.store, clock: h.clock, ids: makeIdSource(h.clock) };
  });
  afterAll(async () => {
    await h.close();
  });

  /** Every VM row of the tenant, and what they add up to for the tenant and for each block named. */
  async function recount(tenantId: string): Promise<{ rows: VmRow[]; tenant: Usage; blocks: Map<string, Usage> }> {
    const rows = await listVmRows(h.store.db, tenantId, undefined, Number.MAX_SAFE_INTEGER);
    const blocks = new Map<string, Usage>();
    for (const vm of rows) for (const block of new Set(tokenChainOf(vm))) blocks.set(block, add(blocks.get(block) ?? ZERO, vm));
    return { rows, tenant: rows.reduce(add, ZERO), blocks };
  }

  it("every tenant's and every block's stored usage equals its VM rows after each create, delete, placement and removal, and the audit finds no drift", async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const run = ++runs;
        const tenantIds = [`kept-${run}-a`, `kept-${run}-b`];
        for (const [i, tenantId] of tenantIds.entries()) await h.createTenant(tenantId, { ...scenario.tenantLimits[i], max_vcpus: 40 });
        const blockIds = tenantIds.map((tenantId) => [1, 2, 3].map((n) => `${tenantId}-block-${n}`));
        const creatorOf = (tenant: number, length: number): Creator | null =>
          length === 0
            ? null
            : {
                tokenId: blockIds[tenant]![length - 1]!,
                chain: blockIds[tenant]!.slice(0, length).map((jti, i) => ({ jti, ...(scenario.blockLimits[i] ? { lim: scenario.blockLimits[i] } : {}) })),
              };
        let serial = 0;
        const attempt = async (tenant: number, chain: number, spec: { vcpus: number; memory_mb: number; disk_gb: number }) => {
          try {
            await createVm(deps, origin, tenantIds[tenant]!, { name: `vm-${++serial}`, image: null, node_id: null, ...spec }, creatorOf(tenant, chain));
          } catch (error) {
            if (!(error instanceof PpnError) || error.code !== 'quota_exceeded') throw error;
          }
        };
        const anyVm = async (n: number, filter: (vm: VmRow) => boolean): Promise<VmRow | undefined> => {
          const all = (await Promise.all(tenantIds.map(async (t) => (await recount(t)).rows))).flat().filter(filter);
          return all.length === 0 ? undefined : all[n % all.length];
        };

        const check = async () => {
          for (const [i, tenantId] of tenantIds.entries()) {
            const counted = await recount(tenantId);
            const tenant = await findTenant(h.store.db, tenantId);
            expect(usageOf(tenant!)).toEqual(counted.tenant);
            const stored = await readBlockUsage(h.store.db, tenantId, blockIds[i]!);
            for (const block of blockIds[i]!) expect(stored.get(block)).toEqual(counted.blocks.get(block) ?? ZERO);
          }
          expect((await findUsageDrift(h.store)).filter((drift) => tenantIds.includes(drift.tenant_id))).toEqual([]);
        };

        for (const step of scenario.steps) {
          if (step.kind === 'create') {
            await attempt(step.tenant, step.chain, { vcpus: step.vcpus, memory_mb: step.memory_mb, disk_gb: step.disk_gb });
          } else if (step.kind === 'burst') {
            await Promise.all(Array.from({ length: step.count }, () => attempt(step.tenant, step.chain, { vcpus: 1, memory_mb: 256, disk_gb: 1 })));
          } else if (step.kind === 'delete') {
            const vm = await anyVm(step.pick, (v) => v.desired_state !== 'deleted');
            if (vm) await deleteVm(deps, origin, vm.tenant_id, vm.vm_id);
          } else if (step.kind === 'place') {
            const vm = await anyVm(step.pick, (v) => v.state === 'pending');
            if (vm) {
              await inTransaction(h.store, (trx) =>
                changeVmState(deps, trx, origin, vm, { state: 'running', node_id: 'node-1', node_pool: vm.tenant_id, reason: null }, 'placed'),
              );
            }
          } else {
            // The node reports a VM being deleted as destroyed: its record goes.
            const vm = await anyVm(step.pick, (v) => v.state === 'deleting');
            if (vm) await inTransaction(h.store, async (trx) => removeVm(deps, trx, origin, (await findVm(trx, vm.vm_id, null))!, 'destroyed'));
          }
          await check();
        }
        if (scenario.cascadeDelete) {
          await deleteTenant(deps, new RevocationList(), origin, tenantIds[0]!, true);
          expect(usageOf((await findTenant(h.store.db, tenantIds[0]!))!)).toEqual(ZERO);
          await check();
        }
      }),
      { numRuns: 30 },
    );
  }, 240_000);
});
