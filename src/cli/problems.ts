/**
 * A refusal as a person reads it: the problem's title and status, its detail, the facts it carries
 * (the quota's limit and usage, when to retry, the field), and what to do next. The API's problem
 * documents are RFC 9457 with this product's extensions (docs/errors.md).
 */
import type { Connection } from './remotes.js';

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  request_id?: string;
  field?: string;
  token_error?: string;
  signature_error?: string;
  quota?: { resource: string; limit: number; used: number; requested: number };
  'violated-policies'?: string[];
  block_id?: string;
  retry_after_seconds?: number;
  [member: string]: unknown;
}

interface ProblemContext {
  method: string;
  path: string;
  connection: Connection;
  retryAfter: string | null;
}

export function problemMessage(problem: Problem, context: ProblemContext): string {
  const lines = [`${problem.title ?? 'Refused'} (${problem.status ?? '?'}${problem.code ? ` ${problem.code}` : ''})`];
  if (problem.detail) lines.push(problem.detail);
  lines.push(...facts(problem, context));
  const next = nextStep(problem, context);
  if (next) lines.push(`Next: ${next}`);
  lines.push(`(${context.method} ${context.path} on ${context.connection.url}${problem.request_id ? `, request id ${problem.request_id}` : ''})`);
  return lines.join('\n  ');
}

function facts(problem: Problem, context: ProblemContext): string[] {
  const out: string[] = [];
  if (problem.quota) {
    const q = problem.quota;
    out.push(
      `${q.resource}: limit ${q.limit}, used ${q.used}, requested ${q.requested}${problem['violated-policies'] ? ` (over ${problem['violated-policies'].join(', ')})` : ''}`,
    );
  }
  if (problem.code === 'rate_limited') {
    const seconds = problem.retry_after_seconds ?? Number(context.retryAfter ?? NaN);
    if (Number.isFinite(seconds)) out.push(`retry in ${seconds} s`);
  }
  if (problem.field) out.push(`field: ${problem.field}`);
  return out;
}

function nextStep(problem: Problem, context: ProblemContext): string | undefined {
  const { connection } = context;
  switch (problem.code ?? '') {
    case 'unauthenticated':
      return unauthenticatedStep(problem, connection);
    case 'forbidden':
      return '"ppn whoami" shows what your token may do; ask a tenant admin for a token with the scope this needs.';
    case 'tenant_suspended':
      return 'the tenant is suspended: reads still work; a platform admin resumes it with "ppn tenant resume TENANT".';
    case 'quota_exceeded':
      return problem.block_id
        ? `your token's block ${problem.block_id} sets this limit: free some (ppn vm delete NAME) or ask for a token with a larger --limit.`
        : 'free some (ppn vm delete NAME), or ask a platform admin to raise the limit (ppn tenant set TENANT KEY=VALUE).';
    case 'rate_limited':
      return 'wait, then run the command again; a platform admin can raise api_rate_limit_rpm (ppn tenant set TENANT api_rate_limit_rpm=N).';
    case 'store_unavailable':
    case 'ledger_unverified':
      return "the server is up but not serving: its operator should read /readyz and the server's log.";
    default:
      return undefined;
  }
}

function unauthenticatedStep(problem: Problem, connection: Connection): string {
  const detail = problem.detail ?? '';
  if (connection.token === undefined) return `no token is configured for ${connection.source}: "ppn remote add NAME URL --token-file FILE", or set PPN_TOKEN.`;
  if (problem.token_error === 'expired') {
    return /admin-token/.test(detail)
      ? 'mint a new one on a server\'s data directory ("service-vm-tenant admin-token"), then save it with "ppn remote add".'
      : 'the token has expired: ask a tenant admin for a new one ("ppn token issue … --out FILE"), then "ppn remote add NAME URL --token-file FILE".';
  }
  if (/revoked/.test(detail)) return 'the token was revoked (its session ended, or it or a token above it was revoked): ask a tenant admin for a new one.';
  if (/tenant no longer exists/.test(detail)) return "the token's tenant was deleted; no token of it will work again.";
  switch (problem.signature_error) {
    case 'signature_missing':
      return `this token demands proof of possession: give its holder's private key ("ppn remote add NAME URL --token-file FILE --key KEY", or PPN_KEY=KEY).`;
    case 'wrong_key':
      return `the key ${connection.keySource ?? ''} is not this token's holder: configure the key the token was issued to ("ppn token inspect" shows the holder).`;
    case undefined:
      return 'check the token ("ppn token inspect TOKEN" reads it offline).';
    default:
      return "the request's signature was refused; check that this machine's clock is right and the key is the holder's.";
  }
}
