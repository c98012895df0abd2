/**
 * The one place where errors become HTTP answers: RFC 9457 problem+json with `type`, `title`,
 * `status`, `detail`, `instance` and extension members. Domain errors (PpnError, TokenError) and
 * Fastify's own errors (validation, body parsing) all pass through here; anything else is a 500
 * whose body says nothing about the internals (no stack, no SQL).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PpnError, type ErrorCode } from '../errors.js';
import { translateStoreError } from '../store/store.js';
import { TokenError } from '../tokens/error.js';

/** The IANA-registered problem type for quota refusals (SPEC §6). */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

interface ProblemKind {
  status: number;
  title: string;
  type: string;
}

const PROBLEM_KINDS: Record<ErrorCode, ProblemKind> = {
  invalid_input: { status: 400, title: 'Invalid input', type: 'urn:ppn:problem:invalid-input' },
  unauthenticated: { status: 401, title: 'Unauthenticated', type: 'urn:ppn:problem:unauthenticated' },
  forbidden: { status: 403, title: 'Forbidden', type: 'urn:ppn:problem:forbidden' },
  tenant_suspended: { status: 403, title: 'Tenant suspended', type: 'urn:ppn:problem:tenant-suspended' },
  not_found: { status: 404, title: 'Not found', type: 'urn:ppn:problem:not-found' },
  conflict: { status: 409, title: 'Conflict', type: 'urn:ppn:problem:conflict' },
  quota_exceeded: { status: 429, title: 'Quota exceeded', type: QUOTA_EXCEEDED_TYPE },
  rate_limited: { status: 429, title: 'Rate limit exceeded', type: 'urn:ppn:problem:rate-limited' },
  body_too_large: { status: 413, title: 'Body too large', type: 'urn:ppn:problem:body-too-large' },
  unsupported_media_type: { status: 415, title: 'Unsupported media type', type: 'urn:ppn:problem:unsupported-media-type' },
  store_unavailable: { status: 503, title: 'Store unavailable', type: 'urn:ppn:problem:store-unavailable' },
  ledger_unverified: { status: 503, title: 'Ledger failed verification', type: 'urn:ppn:problem:ledger-unverified' },
  internal: { status: 500, title: 'Internal error', type: 'urn:ppn:problem:internal' },
};

export function problemKind(code: ErrorCode): ProblemKind {
  return PROBLEM_KINDS[code];
}

/** Turns whatever was thrown into a PpnError. */
export function toPpnError(thrown: unknown): PpnError {
  // A driver error meaning "the database cannot answer now" is a 503 wherever it surfaced.
  const error = translateStoreError(thrown);
  if (error instanceof PpnError) return error;
  if (error instanceof TokenError) return new PpnError('unauthenticated', `invalid token: ${error.message}`, { extensions: { token_error: error.code } });
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) return validationError(fastifyError);
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PpnError('body_too_large', 'request body exceeds 65536 bytes');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PpnError('unsupported_media_type', 'request body must be application/json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new PpnError('invalid_input', 'request body is not valid JSON', { extensions: { field: 'body' } });
  }
  if (error instanceof SyntaxError) {
    return new PpnError('invalid_input', 'request body is not valid JSON', { extensions: { field: 'body' } });
  }
  return new PpnError('internal', 'internal error; the request id identifies it in the server log');
}

function validationError(error: FastifyError): PpnError {
  const first = error.validation![0]!;
  const params = first.params;
  const path = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const leaf =
    (params.missingProperty as string | undefined) ?? (params.additionalProperty as string | undefined) ?? undefined;
  const field = [path, leaf].filter(Boolean).join('.') || (error.validationContext ?? 'body');
  let detail: string;
  if (params.additionalProperty) detail = `unknown field "${field}"`;
  else if (params.missingProperty) detail = `field "${field}" is required`;
  else detail = `field "${field}" ${first.message ?? 'is invalid'}`;
  return new PpnError('invalid_input', detail, { extensions: { field, in: error.validationContext ?? 'body' } });
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: PpnError): FastifyReply {
  const kind = PROBLEM_KINDS[error.code];
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply
    .code(kind.status)
    .type('application/problem+json')
    .send(
      JSON.stringify({
        type: kind.type,
        title: kind.title,
        status: kind.status,
        detail: error.message,
        instance: request.url,
        code: error.code,
        request_id: request.id,
        ...error.extensions,
      }),
    );
}

export function registerProblemHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const problem = toPpnError(error);
    if (problem.code === 'internal') request.log.error({ err: error }, 'unhandled error');
    return sendProblem(request, reply, problem);
  });
  app.setNotFoundHandler((request, reply) => sendProblem(request, reply, new PpnError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`)));
}
