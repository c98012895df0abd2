/**
 * /openapi.json serves clients: it is a valid OpenAPI document (checked by a maintained validator),
 * and every operation has an operationId, a tag, a summary, its problem+json error answers and the
 * success statuses the server really sends. test/api/isolation.test.ts checks every answer it sees
 * against the document.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectDocumentedAnswer } from '../support/documented-answers.js';
import { startHarness, type Harness } from '../support/harness.js';

interface Operation {
  operationId?: string;
  tags?: string[];
  summary?: string;
  responses: Record<string, { content?: Record<string, unknown> }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

describe('/openapi.json', () => {
  let h: Harness;
  let document: Document;
  let operations: [string, Operation][];
  beforeAll(async () => {
    h = await startHarness();
    const answer = await h.request('GET', '/openapi.json');
    expect(answer.statusCode).toBe(200);
    document = answer.json<Document>();
    operations = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, operation]) => [`${method.toUpperCase()} ${path}`, operation] as [string, Operation]),
    );
  });
  afterAll(async () => {
    await h.close();
  });

  it('is a valid OpenAPI document', async () => {
    const result = await new Validator().validate(structuredClone(document));
    expect(result.errors, JSON.stringify(result.errors, null, 2)).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(operations.length).toBeGreaterThan(20);
  });

  it('gives every operation a unique camelCase operationId, one tag and a summary', () => {
    const ids = operations.map(([, operation]) => operation.operationId);
    expect(new Set(ids).size).toBe(operations.length);
    for (const [name, operation] of operations) {
      expect(operation.operationId, name).toMatch(/^[a-z][a-zA-Z]+$/);
      expect(operation.tags, name).toHaveLength(1);
      expect(operation.summary, name).toMatch(/\S/);
    }
  });

  it('gives every operation its problem+json error answers, at least one 4xx', () => {
    for (const [name, operation] of operations) {
      const problems = Object.entries(operation.responses).filter(([status]) => /^[45]/.test(status));
      expect(
        problems.some(([status]) => status.startsWith('4')),
        name,
      ).toBe(true);
      for (const [status, response] of problems) expect(Object.keys(response.content ?? {}), `${name} ${status}`).toEqual(['application/problem+json']);
    }
  });

  it('says what the server sends on success: 204 with no body, 202 for a placed VM, text for the ledger key', () => {
    const responses = (key: string) => operations.find(([name]) => name === key)![1].responses;
    for (const key of ['DELETE /v1/tenants/{tenant_id}', 'DELETE /v1/nodes/{node_id}', 'PUT /v1/nodes/{node_id}/vms/{vm_id}/console']) {
      expect(
        Object.keys(responses(key)).filter((status) => status.startsWith('2')),
        key,
      ).toEqual(['204']);
      expect(responses(key)['204']!.content, key).toBeUndefined();
    }
    expect(Object.keys(responses('DELETE /v1/vms/{vm_id}')).filter((status) => status.startsWith('2'))).toEqual(['202', '204']);
    expect(Object.keys(responses('GET /v1/ledger/key')['200']!.content ?? {})).toEqual(['text/plain']);
  });

  it("the harness refuses an answer the document does not list for the operation, so every test checks the server's answers", () => {
    expect(() => expectDocumentedAnswer(h.app, 'DELETE', '/v1/tenants/tenant-a', 200)).toThrow(
      /DELETE \/v1\/tenants\/tenant-a answered 200, which \/openapi.json does not list/,
    );
    expect(() => expectDocumentedAnswer(h.app, 'DELETE', '/v1/tenants/tenant-a?cascade=true', 204)).not.toThrow();
    expect(() => expectDocumentedAnswer(h.app, 'GET', '/v1/ledger/key', 401)).toThrow(/does not list/);
    expect(() => expectDocumentedAnswer(h.app, 'GET', '/healthz', 299)).not.toThrow();
  });
});
