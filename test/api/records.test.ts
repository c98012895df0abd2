/**
 * The record types the clients read answers with (src/records.ts: types only, so the console's bundle
 * takes nothing of the server) agree with the server's response schemas: every field a record names
 * is in the schema, with a type the record accepts. A record may leave out fields its clients do not
 * read. A field removed from or retyped in a schema (a string that may now be null, say) fails the
 * type check (`npm run typecheck`, which CI runs) until src/records.ts says the same.
 */
import type { Static } from 'typebox';
import { describe, expectTypeOf, it } from 'vitest';
import type { Tenant, Vm } from '../../src/api/schemas.js';
import type { NodeView } from '../../src/api/routes/agent-schemas.js';
import type { NodeDetail } from '../../src/api/routes/nodes.js';
import type { NodeRecord, TenantRecord, VmRecord } from '../../src/records.js';

describe("the clients' record types", () => {
  it('a VM as the API answers it is a VmRecord, field for field', () => {
    expectTypeOf<Static<typeof Vm>>().toEqualTypeOf<VmRecord>();
  });
  it('a tenant as the API answers it is a TenantRecord', () => {
    expectTypeOf<Static<typeof Tenant>>().toExtend<TenantRecord>();
  });
  it('a node, in a list and on its own with its VMs, is a NodeRecord', () => {
    expectTypeOf<Static<typeof NodeView>>().toExtend<NodeRecord>();
    expectTypeOf<Static<typeof NodeDetail>>().toExtend<NodeRecord>();
  });
});
