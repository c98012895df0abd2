/**
 * Every answer a test gets through the harness must be one /openapi.json lists for its operation:
 * the document is what clients are generated from, so an undocumented status is a bug in the
 * document (or in the route). Answers to requests the document has no operation for (the four
 * operational routes, HEAD, a method a path does not take) are not checked, nor the errors of the
 * connection itself, which docs/api.md says are not listed per operation.
 */
import type { FastifyInstance } from 'fastify';

const CONNECTION_ERRORS = new Set([405, 408, 414, 431]);

type Paths = Record<string, Record<string, { responses: Record<string, unknown> }>>;
const patterns = new WeakMap<FastifyInstance, { path: string; regex: RegExp }[]>();

function documentedPaths(app: FastifyInstance): { path: string; regex: RegExp }[] {
  let found = patterns.get(app);
  if (!found) {
    // Static paths first, so /v1/ledger/key is never read as a parameter.
    found = Object.keys((app.swagger() as unknown as { paths: Paths }).paths)
      .sort((a, b) => Number(a.includes('{')) - Number(b.includes('{')))
      .map((path) => ({ path, regex: new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`) }));
    patterns.set(app, found);
  }
  return found;
}

/** The statuses the document lists for `method` on the route `url` reaches, or null if it has no such operation. */
export function documentedStatuses(app: FastifyInstance, method: string, url: string): string[] | null {
  const path = url.split('?')[0]!;
  const match = documentedPaths(app).find(({ regex }) => regex.test(path));
  const operation = match && (app.swagger() as unknown as { paths: Paths }).paths[match.path]![method.toLowerCase()];
  return operation ? Object.keys(operation.responses) : null;
}

/** Throws if `status` answered `method url` is not one the document lists for that operation. */
export function expectDocumentedAnswer(app: FastifyInstance, method: string, url: string, status: number): void {
  if (CONNECTION_ERRORS.has(status)) return;
  const documented = documentedStatuses(app, method, url);
  if (documented && !documented.includes(String(status))) {
    throw new Error(`${method} ${url} answered ${status}, which /openapi.json does not list for it (it lists ${documented.join(', ')})`);
  }
}
