/**
 * The scheduler's placement rules (SPEC §7, docs/design/fleet.md) as properties of the pure
 * `placeVms`, over many random node shapes and VM mixes, plus the named edge cases: exact fit, the
 * 512 MB margin, CPU overcommit, KVM preference, nothing fits, capacity appearing later, and the
 * invariant that no node is ever allocated beyond its capacity.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MEMORY_MARGIN_MB, fits, placeVms, type PendingVm, type SchedulableNode } from '../../src/control/scheduler.js';
import { SHARED_POOL } from '../../src/store/nodes.js';

const T = 'tenant-t';
const U = 'tenant-u';

function node(nodeId: string, shape: Partial<SchedulableNode> = {}): SchedulableNode {
  return {
    pool: T,
    node_id: nodeId,
    cpus: 4,
    memory_mb_total: 8192,
    disk_gb_available: 100,
    kvm: true,
    allocated: { vcpus: 0, memory_mb: 0, disk_gb: 0 },
    ...shape,
  };
}

function vm(vmId: string, shape: Partial<PendingVm> = {}): PendingVm {
  return { vm_id: vmId, tenant_id: T, vcpus: 1, memory_mb: 1024, disk_gb: 10, pinned: null, shared_pool: false, ...shape };
}

const arbNode = fc.record({
  pool: fc.constantFrom(T, U, SHARED_POOL),
  node_id: fc.stringMatching(/^n[0-9]{1,3}$/),
  cpus: fc.integer({ min: 1, max: 64 }),
  memory_mb_total: fc.integer({ min: 256, max: 262_144 }),
  disk_gb_available: fc.integer({ min: 0, max: 4000 }),
  kvm: fc.boolean(),
  allocated: fc.record({ vcpus: fc.integer({ min: 0, max: 64 }), memory_mb: fc.integer({ min: 0, max: 65_536 }), disk_gb: fc.integer({ min: 0, max: 500 }) }),
});

const arbVm = fc.record({
  vm_id: fc.uuid(),
  tenant_id: fc.constantFrom(T, U),
  vcpus: fc.integer({ min: 1, max: 32 }),
  memory_mb: fc.integer({ min: 64, max: 65_536 }),
  disk_gb: fc.integer({ min: 1, max: 1000 }),
  pinned: fc.constant(null),
  shared_pool: fc.boolean(),
});

const arbOvercommit = fc.constantFrom(0.5, 1, 1.5, 4, 8);

/** Unique node keys, as the store guarantees (pool, node id). */
const arbNodes = fc.uniqueArray(arbNode, { selector: (n) => `${n.pool}/${n.node_id}`, maxLength: 12 });

describe('placeVms', () => {
  it('never allocates a node beyond its capacity, counting what was placed before', () => {
    fc.assert(
      fc.property(arbNodes, fc.uniqueArray(arbVm, { selector: (v) => v.vm_id, maxLength: 40 }), arbOvercommit, (nodes, vms, cpuOvercommit) => {
        const result = placeVms(vms, nodes, { cpuOvercommit });
        for (const n of nodes) {
          const placed = result.placements.filter((p) => p.pool === n.pool && p.node_id === n.node_id).map((p) => vms.find((v) => v.vm_id === p.vm_id)!);
          if (placed.length === 0) continue;
          const sum = (key: 'vcpus' | 'memory_mb' | 'disk_gb') => n.allocated[key] + placed.reduce((t, v) => t + v[key], 0);
          expect(sum('vcpus')).toBeLessThanOrEqual(Math.floor(n.cpus * cpuOvercommit));
          expect(sum('memory_mb') + MEMORY_MARGIN_MB).toBeLessThanOrEqual(n.memory_mb_total);
          expect(sum('disk_gb')).toBeLessThanOrEqual(n.disk_gb_available);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("places every VM exactly once or gives a reason, only on its tenant's nodes or (with shared_pool) shared ones", () => {
    fc.assert(
      fc.property(arbNodes, fc.uniqueArray(arbVm, { selector: (v) => v.vm_id, maxLength: 40 }), arbOvercommit, (nodes, vms, cpuOvercommit) => {
        const result = placeVms(vms, nodes, { cpuOvercommit });
        for (const v of vms) {
          const placements = result.placements.filter((p) => p.vm_id === v.vm_id);
          expect(placements.length + (result.unplaced.has(v.vm_id) ? 1 : 0)).toBe(1);
          for (const p of placements) {
            expect(p.pool === v.tenant_id || (v.shared_pool && p.pool === SHARED_POOL)).toBe(true);
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it("uses a shared node only when none of the tenant's own nodes fits", () => {
    fc.assert(
      fc.property(arbNodes, arbVm, arbOvercommit, (nodes, v, cpuOvercommit) => {
        const result = placeVms([v], nodes, { cpuOvercommit });
        const p = result.placements[0];
        if (p?.pool === SHARED_POOL) {
          expect(nodes.some((n) => n.pool === v.tenant_id && fits(n, v, { cpuOvercommit }))).toBe(false);
        }
        // A VM left unplaced fits on no node it may use.
        if (!p) expect(nodes.some((n) => (n.pool === v.tenant_id || (v.shared_pool && n.pool === SHARED_POOL)) && fits(n, v, { cpuOvercommit }))).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('prefers a KVM node, then the one with the most free memory', () => {
    fc.assert(
      fc.property(arbNodes, arbVm, arbOvercommit, (nodes, v, cpuOvercommit) => {
        const own = { ...v, shared_pool: false };
        const chosen = placeVms([own], nodes, { cpuOvercommit }).placements[0];
        if (!chosen) return;
        const winner = nodes.find((n) => n.pool === chosen.pool && n.node_id === chosen.node_id)!;
        const free = (n: SchedulableNode) => n.memory_mb_total - n.allocated.memory_mb;
        for (const n of nodes.filter((c) => c.pool === own.tenant_id && fits(c, own, { cpuOvercommit }))) {
          if (n.kvm && !winner.kvm) throw new Error(`chose non-KVM ${winner.node_id} over KVM ${n.node_id}`);
          if (n.kvm === winner.kvm) expect(free(winner)).toBeGreaterThanOrEqual(free(n));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('fits a VM exactly: memory plus the 512 MB margin, vCPUs times the overcommit, and disk', () => {
    const exact = node('exact', { cpus: 2, memory_mb_total: 2048 + MEMORY_MARGIN_MB, disk_gb_available: 20 });
    expect(placeVms([vm('v', { vcpus: 2, memory_mb: 2048, disk_gb: 20 })], [exact], { cpuOvercommit: 1 }).placements).toHaveLength(1);
    for (const over of [{ vcpus: 3 }, { memory_mb: 2049 }, { disk_gb: 21 }]) {
      const result = placeVms([vm('v', { vcpus: 2, memory_mb: 2048, disk_gb: 20, ...over })], [exact], { cpuOvercommit: 1 });
      expect(result.placements).toHaveLength(0);
      expect(result.unplaced.get('v')).toMatch(/no ready node has room/);
    }
  });

  it('keeps the margin: memory equal to the total does not fit', () => {
    expect(placeVms([vm('v', { memory_mb: 4096 })], [node('n', { memory_mb_total: 4096 })], { cpuOvercommit: 4 }).placements).toHaveLength(0);
  });

  it('overcommits vCPUs by the configured ratio', () => {
    const twoCpus = node('n', { cpus: 2, memory_mb_total: 1_000_000 });
    const vms = Array.from({ length: 10 }, (_, i) => vm(`v${i}`, { vcpus: 1, memory_mb: 64, disk_gb: 1 }));
    expect(placeVms(vms, [twoCpus], { cpuOvercommit: 1 }).placements).toHaveLength(2);
    expect(placeVms(vms, [twoCpus], { cpuOvercommit: 4 }).placements).toHaveLength(8);
    expect(placeVms(vms, [twoCpus], { cpuOvercommit: 1.5 }).placements).toHaveLength(3);
  });

  it('prefers KVM even over more free memory, and spreads by free memory', () => {
    const tcg = node('tcg', { kvm: false, memory_mb_total: 64_000 });
    const kvm = node('kvm', { kvm: true, memory_mb_total: 8192 });
    expect(placeVms([vm('v')], [tcg, kvm], { cpuOvercommit: 4 }).placements[0]!.node_id).toBe('kvm');
    const spread = placeVms([vm('a', { memory_mb: 2048 }), vm('b', { memory_mb: 2048 })], [node('x'), node('y')], { cpuOvercommit: 4 });
    expect(new Set(spread.placements.map((p) => p.node_id))).toEqual(new Set(['x', 'y']));
  });

  it('leaves a reason when nothing fits, and places the VM once capacity appears', () => {
    const big = vm('big', { vcpus: 8, memory_mb: 16_384 });
    expect(placeVms([big], [], { cpuOvercommit: 4 }).unplaced.get('big')).toMatch(/no ready fleet node/);
    const small = node('small');
    expect(placeVms([big], [small], { cpuOvercommit: 4 }).unplaced.get('big')).toMatch(/no ready node has room/);
    const later = placeVms([big], [small, node('large', { cpus: 16, memory_mb_total: 32_768 })], { cpuOvercommit: 4 });
    expect(later.placements).toEqual([{ vm_id: 'big', pool: T, node_id: 'large' }]);
  });

  it('places a pinned VM only on its node', () => {
    const pinned = vm('p', { pinned: { pool: T, node_id: 'chosen' } });
    expect(placeVms([pinned], [node('other', { memory_mb_total: 64_000 }), node('chosen')], { cpuOvercommit: 4 }).placements[0]!.node_id).toBe('chosen');
    expect(placeVms([pinned], [node('other')], { cpuOvercommit: 4 }).unplaced.get('p')).toMatch(/not ready/);
  });

  it("never places a tenant's VM on another tenant's node", () => {
    expect(placeVms([vm('v', { tenant_id: U, shared_pool: true })], [node('t-only')], { cpuOvercommit: 4 }).placements).toEqual([]);
  });
});
