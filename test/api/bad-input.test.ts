/**
 * Bad input gets a clear problem+json answer and changes nothing (SPEC §3, §9). Each row is one bad
 * request, otherwise valid, so that if the check it exercises were missing the request would succeed
 * and change something. Every row asserts the status, the RFC 9457 body (naming the failing field for
 * 400s) and that the tenants, tokens and VMs tables and the ledger are exactly as before.
 */
import { sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeIdSource, type ManualClock } from '../../src/clock.js';
import { loadKeyEncryptionKey } from '../../src/config/data-dir.js';
import { retirePlatformKey, rotatePlatformKey } from '../../src/control/platform-keys.js';
import { encodeClaims, rootSigningInput, serializeToken, type BlockClaims } from '../../src/tokens/format.js';
import { mintRootToken } from '../../src/tokens/mint.js';
import { encodeBase64url, generateKeyPair, keyId } from '../../src/tokens/keys.js';
import { publicKeyText, startHarness, type Harness } from '../support/harness.js';
import { expectProblem, snapshotState } from './expectations.js';

const A = 'acme';
const DAY = 24 * 3600;

/** Valid bodies; each bad case changes one thing in one of them. */
const NEW_TENANT = { tenant_id: 'new-tenant', display_name: 'New', max_vms: 5, storage_quota_gb: 50, api_rate_limit_rpm: 100 };
const NEW_VM = { name: 'web-9', vcpus: 1, memory_mb: 512, disk_gb: 1 };
const PUBKEY = publicKeyText(generateKeyPair());
const NEW_TOKEN = { subject_pubkey: PUBKEY, scope: 'tenant:read', expires_in_seconds: 3600 };

type Caller = 'admin' | 'tenant-admin';

interface BadRequest {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  as?: Caller;
  body?: unknown;
  /** Sent as-is, with content-type application/json unless `headers` says otherwise. */
  payload?: string;
  headers?: Record<string, string>;
  status: number;
  /** The field a 400 must name. */
  field?: string;
  /** What the detail must say, for cases where the words matter (allowed values, the rule). */
  detail?: RegExp;
}

const tenantWith = (change: Record<string, unknown>): Record<string, unknown> => ({ ...NEW_TENANT, ...change });
const vmWith = (change: Record<string, unknown>): Record<string, unknown> => ({ ...NEW_VM, ...change });
const tokenWith = (change: Record<string, unknown>): Record<string, unknown> => ({ ...NEW_TOKEN, ...change });

const postTenant = (name: string, body: unknown, field: string): BadRequest => ({
  name: `new tenant: ${name}`,
  method: 'POST',
  url: '/v1/tenants',
  body,
  status: 400,
  field,
});
const patchTenant = (name: string, body: unknown, field: string): BadRequest => ({
  name: `tenant change: ${name}`,
  method: 'PATCH',
  url: `/v1/tenants/${A}`,
  body,
  status: 400,
  field,
});
const postVm = (name: string, body: unknown, field: string): BadRequest => ({
  name: `new VM: ${name}`,
  method: 'POST',
  url: '/v1/vms',
  as: 'tenant-admin',
  body,
  status: 400,
  field,
});
const postToken = (name: string, body: unknown, field: string): BadRequest => ({
  name: `new token: ${name}`,
  method: 'POST',
  url: `/v1/tenants/${A}/tokens`,
  body,
  status: 400,
  field,
});

const BAD_TENANT_IDS: [string, string][] = [
  ['uppercase', 'Acme-Corp'],
  ['64 characters', `a${'b'.repeat(63)}`],
  ['1 character', 'a'],
  ['unicode', 'acmé'],
  ['a path', '../etc'],
  ['a trailing hyphen', 'acme-'],
  ['a double hyphen', 'acme--corp'],
  ['a leading digit', '1acme'],
  ['empty', ''],
  ['spaces', 'acme corp'],
];

const ENCODED_BAD_TENANT_IDS: [string, string][] = [
  ['uppercase', 'ACME'],
  ['64 characters', `a${'b'.repeat(63)}`],
  ['1 character', 'a'],
  ['unicode', encodeURIComponent('acmé')],
  ['an encoded path', encodeURIComponent('../etc')],
  ['a trailing hyphen', 'acme-'],
  ['a double hyphen', 'acme--corp'],
  ['a leading digit', '1acme'],
];

const OVERSIZED = 'x'.repeat(70 * 1024);

/**
 * The ledger routes' query strings (SPEC §8). Each valid query below is accepted (see the guard test);
 * each bad case changes one field of one of them. The harness's ledger has 4 entries.
 */
const cursorOf = (text: string) => encodeBase64url(Buffer.from(text));
const LEDGER_ENTRIES = '/v1/ledger/entries';
const VALID_ENTRIES_QUERY = {
  tenant_id: A,
  vm_id: `vm-${'0'.repeat(26)}`,
  node_id: 'compute-west-01',
  token_id: `tok-${'0'.repeat(26)}`,
  event_type: 'VM_CREATED',
  since: '2026-01-01T00:00:00Z',
  until: '2030-01-01T00:00:00.000+02:00',
  limit: '10',
  order: 'desc',
  cursor: cursorOf('{"after":"0"}'),
};
const VALID_INCLUSION = { index: '0', tree_size: '1' };
const VALID_CONSISTENCY = { from: '1', to: '2' };

/** The path with the valid query changed: a string sets a field, null removes it. */
function ledgerUrl(path: string, valid: Record<string, string>, change: Record<string, string | null>): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...valid, ...change })) if (value !== null) query.set(key, value);
  return `${path}?${query.toString()}`;
}
const ledgerEntries = (name: string, change: Record<string, string | null>, field: string): BadRequest => ({
  name: `ledger entries: ${name}`,
  method: 'GET',
  url: ledgerUrl(LEDGER_ENTRIES, VALID_ENTRIES_QUERY, change),
  status: 400,
  field,
});
const inclusion = (name: string, change: Record<string, string | null>, field: string): BadRequest => ({
  name: `inclusion proof: ${name}`,
  method: 'GET',
  url: ledgerUrl('/v1/ledger/proof/inclusion', VALID_INCLUSION, change),
  status: 400,
  field,
});
const consistency = (name: string, change: Record<string, string | null>, field: string): BadRequest => ({
  name: `consistency proof: ${name}`,
  method: 'GET',
  url: ledgerUrl('/v1/ledger/proof/consistency', VALID_CONSISTENCY, change),
  status: 400,
  field,
});

/** Bad values for a tree size or index: each is not a whole number the API can take. */
const BAD_WHOLE_NUMBERS: [string, string][] = [
  ['negative', '-1'],
  ['fractional', '1.5'],
  ['text', 'abc'],
  ['beyond the largest safe integer', '9007199254740992'],
  ['twenty digits', '99999999999999999999'],
  ['1e400', '1e400'],
  ['empty', ''],
  ['a boolean', 'true'],
];

/** Text that is not an RFC 3339 time, or names no real instant. */
const BAD_TIMES: [string, string][] = [
  ['a word', 'yesterday'],
  ['a date only', '2026-01-31'],
  ['a space for the T', '2026-01-31 12:00:00Z'],
  ['no offset', '2026-01-31T12:00:00'],
  ['seconds since 1970', '1769860800'],
  ['February 30', '2026-02-30T00:00:00Z'],
  ['April 31', '2026-04-31T00:00:00Z'],
  ['February 29 of a common year', '2025-02-29T00:00:00Z'],
  ['hour 24', '2026-01-31T24:00:00Z'],
  ['month 13', '2026-13-01T00:00:00Z'],
  ['second 61', '2026-01-31T12:00:61Z'],
  ['an offset of 25 hours', '2026-01-31T12:00:00+25:00'],
  ['an offset without a colon', '2026-01-31T12:00:00+0200'],
  ['65 characters', `2026-01-31T12:00:00.${'0'.repeat(44)}Z`],
  ['empty', ''],
];

const CASES: BadRequest[] = [
  // Bodies that are not JSON at all.
  { name: 'malformed JSON', method: 'POST', url: '/v1/tenants', payload: '{"tenant_id": "new-tenant", }', status: 400, field: 'body' },
  { name: 'truncated JSON', method: 'POST', url: '/v1/tenants', payload: JSON.stringify(NEW_TENANT).slice(0, 30), status: 400, field: 'body' },
  { name: 'empty body with content-type json', method: 'POST', url: '/v1/tenants', payload: '', status: 400, field: 'body' },
  { name: 'truncated JSON on PATCH', method: 'PATCH', url: `/v1/tenants/${A}`, payload: '{"display_name": "x', status: 400, field: 'body' },
  { name: 'truncated JSON on a VM', method: 'POST', url: '/v1/vms', as: 'tenant-admin', payload: '{"name": ', status: 400, field: 'body' },
  { name: 'truncated JSON on a token', method: 'POST', url: `/v1/tenants/${A}/tokens`, payload: '{"scope"', status: 400, field: 'body' },
  { name: 'JSON null as the body', method: 'POST', url: '/v1/tenants', payload: 'null', status: 400, field: 'body' },
  { name: 'a JSON string as the body', method: 'POST', url: '/v1/vms', as: 'tenant-admin', payload: '"web-1"', status: 400, field: 'body' },

  // Wrong types.
  postTenant('string where integer', tenantWith({ max_vms: '5' }), 'max_vms'),
  postTenant('float for integer', tenantWith({ storage_quota_gb: 50.5 }), 'storage_quota_gb'),
  postTenant('boolean for integer', tenantWith({ api_rate_limit_rpm: true }), 'api_rate_limit_rpm'),
  postTenant('null for a required string', tenantWith({ display_name: null }), 'display_name'),
  postTenant('number for the tenant id', tenantWith({ tenant_id: 42 }), 'tenant_id'),
  postTenant('object for a string', tenantWith({ display_name: { en: 'New' } }), 'display_name'),
  postTenant('string for a nullable integer', tenantWith({ max_vcpus: 'many' }), 'max_vcpus'),
  postTenant('missing required field', { tenant_id: 'new-tenant' }, 'display_name'),
  postTenant('array for the body object', [NEW_TENANT], 'body'),
  patchTenant('string where integer', { max_vms: '20' }, 'max_vms'),
  patchTenant('null for a non-nullable limit', { storage_quota_gb: null }, 'storage_quota_gb'),
  patchTenant('string for the force flag', { max_vms: 0, force: 'yes' }, 'force'),
  { ...patchTenant('unknown state', { state: 'deleted' }, 'state'), detail: /^field "state" must be "active" or "suspended"$/ },
  { ...patchTenant('an empty change', {}, 'body'), detail: /must set at least one of "display_name", "max_vms", .*"state"/ },
  patchTenant('array for the body object', [{ display_name: 'x' }], 'body'),
  patchTenant('string for the require_pop flag', { require_pop: 'yes' }, 'require_pop'),
  postVm('string where integer', vmWith({ vcpus: '2' }), 'vcpus'),
  postVm('float for integer', vmWith({ memory_mb: 1024.5 }), 'memory_mb'),
  postVm('boolean for integer', vmWith({ disk_gb: true }), 'disk_gb'),
  postVm('null for the name', vmWith({ name: null }), 'name'),
  postVm('array for the image', vmWith({ image: ['ubuntu'] }), 'image'),
  postVm('array for the body object', [NEW_VM], 'body'),
  postToken('string where integer', tokenWith({ expires_in_seconds: '3600' }), 'expires_in_seconds'),
  postToken('number for the public key', tokenWith({ subject_pubkey: 12345 }), 'subject_pubkey'),
  postToken('object for the scope', tokenWith({ scope: { 'tenant:read': true } }), 'scope'),
  postToken('null for a required field', tokenWith({ expires_in_seconds: null }), 'expires_in_seconds'),
  postToken('missing scope', { subject_pubkey: PUBKEY, expires_in_seconds: 60 }, 'scope'),
  postToken('array for the body object', [NEW_TOKEN], 'body'),
  postToken('string for the proof_of_possession flag', tokenWith({ proof_of_possession: 'true' }), 'proof_of_possession'),

  // Unknown fields, in every body the API takes.
  postTenant('unknown field', tenantWith({ shared_pool: true }), 'shared_pool'),
  postTenant('misspelt field', { ...NEW_TENANT, maxVms: 3 }, 'maxVms'),
  postTenant('server-owned field', tenantWith({ state: 'suspended' }), 'state'),
  patchTenant('unknown field', { display_name: 'x', colour: 'red' }, 'colour'),
  patchTenant('the immutable tenant id', { tenant_id: 'renamed' }, 'tenant_id'),
  patchTenant('a server-owned timestamp', { created_at: '2000-01-01T00:00:00Z' }, 'created_at'),
  postVm('a tenant in the body', vmWith({ tenant_id: 'other' }), 'tenant_id'),
  postVm('misspelt field', vmWith({ cpus: 2 }), 'cpus'),
  postVm('a server-owned field', vmWith({ state: 'running' }), 'state'),
  postToken('unknown field', tokenWith({ admin: true }), 'admin'),
  postToken('a tenant in the body', tokenWith({ tenant_id: 'other' }), 'tenant_id'),

  // Bad tenant ids, in the body and in the path.
  ...BAD_TENANT_IDS.map(([why, id]) => ({
    ...postTenant(`tenant id with ${why}`, tenantWith({ tenant_id: id }), 'tenant_id'),
    detail: typeof id === 'string' ? /lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit/ : /string/,
  })),
  ...ENCODED_BAD_TENANT_IDS.flatMap(([why, id]): BadRequest[] => [
    { name: `GET tenant path id with ${why}`, method: 'GET', url: `/v1/tenants/${id}`, status: 400, field: 'tenant_id' },
    { name: `PATCH tenant path id with ${why}`, method: 'PATCH', url: `/v1/tenants/${id}`, body: { display_name: 'x' }, status: 400, field: 'tenant_id' },
    { name: `DELETE tenant path id with ${why}`, method: 'DELETE', url: `/v1/tenants/${id}?cascade=true`, status: 400, field: 'tenant_id' },
    { name: `token issue path id with ${why}`, method: 'POST', url: `/v1/tenants/${id}/tokens`, body: NEW_TOKEN, status: 400, field: 'tenant_id' },
    { name: `?tenant_id= with ${why}`, method: 'POST', url: `/v1/vms?tenant_id=${id}`, body: NEW_VM, status: 400, field: 'tenant_id' },
    { name: `session list ?tenant_id= with ${why}`, method: 'GET', url: `/v1/sessions?tenant_id=${id}`, status: 400, field: 'tenant_id' },
    { name: `session end ?tenant_id= with ${why}`, method: 'DELETE', url: `/v1/sessions/tok-${'0'.repeat(26)}?tenant_id=${id}`, status: 400, field: 'tenant_id' },
  ]),
  { name: 'a VM id that is not one', method: 'DELETE', url: '/v1/vms/VM-1', status: 400, field: 'vm_id' },
  { name: 'a VM id with a path in it', method: 'POST', url: `/v1/vms/${encodeURIComponent('../vm-1')}/stop`, status: 400, field: 'vm_id' },
  { name: 'a token id that is not one', method: 'DELETE', url: `/v1/tenants/${A}/tokens/all`, status: 400, field: 'token_id' },
  { name: 'a session id that is not one', method: 'DELETE', url: '/v1/sessions/all', as: 'tenant-admin', status: 400, field: 'token_id' },
  {
    name: 'a session id with a path in it',
    method: 'DELETE',
    url: `/v1/sessions/${encodeURIComponent(`../tok-${'0'.repeat(26)}`)}`,
    as: 'tenant-admin',
    status: 400,
    field: 'token_id',
  },
  { name: 'a session list without a tenant, as a platform admin', method: 'GET', url: '/v1/sessions', status: 400, field: 'tenant_id' },
  { name: 'a platform token id that is not one', method: 'DELETE', url: '/v1/admin/tokens/all', status: 400, field: 'token_id' },
  { name: 'a platform token id of 65 characters', method: 'DELETE', url: `/v1/admin/tokens/tok-${'0'.repeat(61)}`, status: 400, field: 'token_id' },
  { name: 'cascade that is not a boolean', method: 'DELETE', url: `/v1/tenants/${A}?cascade=maybe`, status: 400, field: 'cascade' },

  // Quotas out of range.
  postTenant('negative max_vms', tenantWith({ max_vms: -1 }), 'max_vms'),
  postTenant('negative storage_quota_gb', tenantWith({ storage_quota_gb: -10 }), 'storage_quota_gb'),
  postTenant('negative max_vcpus', tenantWith({ max_vcpus: -4 }), 'max_vcpus'),
  postTenant('negative max_memory_mb', tenantWith({ max_memory_mb: -1 }), 'max_memory_mb'),
  postTenant('negative api_rate_limit_rpm', tenantWith({ api_rate_limit_rpm: -60 }), 'api_rate_limit_rpm'),
  postTenant('api_rate_limit_rpm 0', tenantWith({ api_rate_limit_rpm: 0 }), 'api_rate_limit_rpm'),
  postTenant('max_vms 1e12', tenantWith({ max_vms: 1e12 }), 'max_vms'),
  postTenant('max_vms one beyond the maximum', tenantWith({ max_vms: 100_001 }), 'max_vms'),
  postTenant('storage_quota_gb 1e12', tenantWith({ storage_quota_gb: 1e12 }), 'storage_quota_gb'),
  postTenant('max_vcpus 1e12', tenantWith({ max_vcpus: 1e12 }), 'max_vcpus'),
  postTenant('max_memory_mb 1e12', tenantWith({ max_memory_mb: 1e12 }), 'max_memory_mb'),
  postTenant('api_rate_limit_rpm 1e12', tenantWith({ api_rate_limit_rpm: 1e12 }), 'api_rate_limit_rpm'),
  {
    name: 'a quota beyond any double (1e400)',
    method: 'POST',
    url: '/v1/tenants',
    payload: JSON.stringify(NEW_TENANT).replace('"max_vms":5', '"max_vms":1e400'),
    status: 400,
    field: 'max_vms',
  },
  patchTenant('negative max_vms', { max_vms: -1 }, 'max_vms'),
  patchTenant('storage_quota_gb 1e12', { storage_quota_gb: 1e12 }, 'storage_quota_gb'),
  patchTenant('api_rate_limit_rpm 0', { api_rate_limit_rpm: 0 }, 'api_rate_limit_rpm'),
  patchTenant('an empty display name', { display_name: '' }, 'display_name'),

  // Too large, or not JSON.
  { name: 'a tenant body over 64 KiB', method: 'POST', url: '/v1/tenants', body: tenantWith({ display_name: OVERSIZED }), status: 413 },
  { name: 'a PATCH body over 64 KiB', method: 'PATCH', url: `/v1/tenants/${A}`, body: { display_name: OVERSIZED }, status: 413 },
  { name: 'a VM body over 64 KiB', method: 'POST', url: '/v1/vms', as: 'tenant-admin', body: vmWith({ image: OVERSIZED }), status: 413 },
  { name: 'a token body over 64 KiB', method: 'POST', url: `/v1/tenants/${A}/tokens`, body: tokenWith({ subject_pubkey: OVERSIZED }), status: 413 },
  ...(
    [
      ['text/plain', JSON.stringify(NEW_TENANT)],
      ['application/x-www-form-urlencoded', 'tenant_id=new-tenant&display_name=New'],
      ['application/xml', '<tenant id="new-tenant"/>'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="tenant_id"\r\n\r\nnew-tenant\r\n--x--'],
    ] as const
  ).flatMap(([type, payload]): BadRequest[] => [
    { name: `${type} tenant body`, method: 'POST', url: '/v1/tenants', payload, headers: { 'content-type': type }, status: 415 },
    { name: `${type} PATCH body`, method: 'PATCH', url: `/v1/tenants/${A}`, payload: '{"display_name":"x"}', headers: { 'content-type': type }, status: 415 },
    { name: `${type} VM body`, method: 'POST', url: '/v1/vms', as: 'tenant-admin', payload: JSON.stringify(NEW_VM), headers: { 'content-type': type }, status: 415 },
    { name: `${type} token body`, method: 'POST', url: `/v1/tenants/${A}/tokens`, payload: JSON.stringify(NEW_TOKEN), headers: { 'content-type': type }, status: 415 },
  ]),

  // Token requests.
  postToken('a short public key', tokenWith({ subject_pubkey: 'abc' }), 'subject_pubkey'),
  postToken('an empty public key', tokenWith({ subject_pubkey: '' }), 'subject_pubkey'),
  postToken('a public key that is not base64', tokenWith({ subject_pubkey: '!'.repeat(43) }), 'subject_pubkey'),
  postToken('a 31-byte public key', tokenWith({ subject_pubkey: encodeBase64url(Buffer.alloc(31, 7)) }), 'subject_pubkey'),
  postToken('a 33-byte public key', tokenWith({ subject_pubkey: encodeBase64url(Buffer.alloc(33, 7)) }), 'subject_pubkey'),
  postToken('a 31-byte hex public key', tokenWith({ subject_pubkey: Buffer.alloc(31, 7).toString('hex') }), 'subject_pubkey'),
  {
    ...postToken('an unknown scope', tokenWith({ scope: 'tenant:superuser' }), 'scope'),
    detail: /must be one of "service:platform-admin", .*"tenant:read" or "node:agent"$/,
  },
  {
    ...postToken('an unknown scope in a list', tokenWith({ scope: ['tenant:read', 'root'] }), 'scope.1'),
    detail: /^field "scope.1" must be one of "service:platform-admin", /,
  },
  postToken('an empty scope list', tokenWith({ scope: [] }), 'scope'),
  postToken('a repeated scope', tokenWith({ scope: ['tenant:read', 'tenant:read'] }), 'scope'),
  postToken('platform-admin inside a tenant', tokenWith({ scope: 'service:platform-admin' }), 'scope'),
  postToken('expires_in_seconds 0', tokenWith({ expires_in_seconds: 0 }), 'expires_in_seconds'),
  postToken('an empty name', tokenWith({ name: '' }), 'name'),
  postToken('a 65-character name', tokenWith({ name: 'n'.repeat(65) }), 'name'),
  postToken('a name with a newline', tokenWith({ name: 'ci\nforged line' }), 'name'),
  postToken('a name with an escape character', tokenWith({ name: 'red\u001b[31m' }), 'name'),
  postToken('a name with a C1 control character', tokenWith({ name: 'ci\u0085' }), 'name'),
  postToken('a number for a name', tokenWith({ name: 7 }), 'name'),
  postToken('a 257-character description', tokenWith({ description: 'd'.repeat(257) }), 'description'),
  postToken('a description with a tab', tokenWith({ description: 'a\tb' }), 'description'),
  postToken('negative expires_in_seconds', tokenWith({ expires_in_seconds: -60 }), 'expires_in_seconds'),
  postToken('expires_in_seconds one beyond 90 days', tokenWith({ expires_in_seconds: 90 * DAY + 1 }), 'expires_in_seconds'),
  postToken('expires_in_seconds of a year', tokenWith({ expires_in_seconds: 365 * DAY }), 'expires_in_seconds'),
  postToken('fractional expires_in_seconds', tokenWith({ expires_in_seconds: 1.5 }), 'expires_in_seconds'),
  postToken('limits that are not an object', tokenWith({ limits: 2 }), 'limits'),
  postToken('an unknown limit', tokenWith({ limits: { max_nodes: 2 } }), 'limits.max_nodes'),
  postToken('a negative limits.max_vms', tokenWith({ limits: { max_vms: -1 } }), 'limits.max_vms'),
  postToken('a string limits.storage_quota_gb', tokenWith({ limits: { storage_quota_gb: '20' } }), 'limits.storage_quota_gb'),
  postToken('a fractional limits.max_vcpus', tokenWith({ limits: { max_vcpus: 1.5 } }), 'limits.max_vcpus'),
  postToken('a null limits.max_memory_mb', tokenWith({ limits: { max_memory_mb: null } }), 'limits.max_memory_mb'),

  // VM fields.
  postVm('a name with uppercase', vmWith({ name: 'Web-1' }), 'name'),
  postVm('a name with underscores', vmWith({ name: 'web_1' }), 'name'),
  postVm('a name with a leading hyphen', vmWith({ name: '-web' }), 'name'),
  postVm('a name of 64 characters', vmWith({ name: 'w'.repeat(64) }), 'name'),
  postVm('an empty name', vmWith({ name: '' }), 'name'),
  postVm('vcpus 0', vmWith({ vcpus: 0 }), 'vcpus'),
  postVm('vcpus beyond the maximum', vmWith({ vcpus: 257 }), 'vcpus'),
  postVm('memory_mb 1', vmWith({ memory_mb: 1 }), 'memory_mb'),
  postVm('negative memory_mb', vmWith({ memory_mb: -1024 }), 'memory_mb'),
  postVm('disk_gb -1', vmWith({ disk_gb: -1 }), 'disk_gb'),
  postVm('disk_gb 0', vmWith({ disk_gb: 0 }), 'disk_gb'),
  postVm('disk_gb 1e12', vmWith({ disk_gb: 1e12 }), 'disk_gb'),
  postVm("an image with '/'", vmWith({ image: 'library/ubuntu' }), 'image'),
  postVm("an image of '..'", vmWith({ image: '..' }), 'image'),
  postVm('an image path escaping the store', vmWith({ image: '../../etc/passwd' }), 'image'),
  postVm('an absolute image path', vmWith({ image: '/var/lib/images/ubuntu.qcow2' }), 'image'),
  postVm('an empty image', vmWith({ image: '' }), 'image'),
  postVm('a node id with underscores', vmWith({ node_id: 'node_1' }), 'node_id'),

  // Ledger entries: every query field.
  ...BAD_TIMES.flatMap(([why, time]) => [ledgerEntries(`since ${why}`, { since: time }, 'since'), ledgerEntries(`until ${why}`, { until: time }, 'until')]),
  ledgerEntries('an unknown event type', { event_type: 'VM_EXPLODED' }, 'event_type'),
  ledgerEntries('an event type in lower case', { event_type: 'vm_created' }, 'event_type'),
  ledgerEntries('two event types in one', { event_type: 'VM_CREATED,VM_DELETED' }, 'event_type'),
  ledgerEntries('an empty event type', { event_type: '' }, 'event_type'),
  ...ENCODED_BAD_TENANT_IDS.map(([why, id]) => ledgerEntries(`tenant id with ${why}`, { tenant_id: decodeURIComponent(id) }, 'tenant_id')),
  ledgerEntries('an empty tenant id', { tenant_id: '' }, 'tenant_id'),
  ledgerEntries('a VM id in upper case', { vm_id: 'VM-1' }, 'vm_id'),
  ledgerEntries('a VM id too short', { vm_id: 'vm-1' }, 'vm_id'),
  ledgerEntries('a VM id with a path', { vm_id: `../vm-${'0'.repeat(26)}` }, 'vm_id'),
  ledgerEntries('a VM id one character long', { vm_id: `vm-${'0'.repeat(27)}` }, 'vm_id'),
  ledgerEntries('a token id that is not one', { token_id: 'all' }, 'token_id'),
  ledgerEntries('a token id in upper case', { token_id: `tok-${'A'.repeat(26)}` }, 'token_id'),
  ledgerEntries('a node id with underscores', { node_id: 'node_1' }, 'node_id'),
  ledgerEntries('a node id with a leading hyphen', { node_id: '-node' }, 'node_id'),
  ledgerEntries('a node id of 64 characters', { node_id: 'n'.repeat(64) }, 'node_id'),
  ledgerEntries('an order in upper case', { order: 'DESC' }, 'order'),
  ledgerEntries('an order that is not asc or desc', { order: 'newest' }, 'order'),
  ledgerEntries('an empty order', { order: '' }, 'order'),
  ledgerEntries('limit 0', { limit: '0' }, 'limit'),
  ledgerEntries('limit 1001', { limit: '1001' }, 'limit'),
  ledgerEntries('a cursor of a VM listing', { cursor: cursorOf(`{"after":"vm-${'0'.repeat(26)}"}`) }, 'cursor'),
  ledgerEntries('a cursor of a negative index', { cursor: cursorOf('{"after":"-1"}') }, 'cursor'),
  ledgerEntries('a cursor of a fractional index', { cursor: cursorOf('{"after":"1.5"}') }, 'cursor'),
  ledgerEntries('a cursor of 17 digits', { cursor: cursorOf('{"after":"12345678901234567"}') }, 'cursor'),
  ledgerEntries('a cursor of an empty index', { cursor: cursorOf('{"after":""}') }, 'cursor'),
  ledgerEntries('a cursor of an empty object', { cursor: cursorOf('{}') }, 'cursor'),
  ledgerEntries('a cursor of JSON null', { cursor: cursorOf('null') }, 'cursor'),
  ledgerEntries('a garbage cursor', { cursor: '%%%' }, 'cursor'),
  ledgerEntries('an unknown field', { tenant: A }, 'tenant'),
  ledgerEntries('a misspelt field', { eventType: 'VM_CREATED' }, 'eventType'),
  ledgerEntries('a proof field', { index: '1' }, 'index'),

  // Ledger proofs: every query field.
  ...BAD_WHOLE_NUMBERS.flatMap(([why, value]) => [
    inclusion(`index ${why}`, { index: value }, 'index'),
    inclusion(`tree_size ${why}`, { tree_size: value }, 'tree_size'),
    consistency(`from ${why}`, { from: value }, 'from'),
    consistency(`to ${why}`, { to: value }, 'to'),
  ]),
  inclusion('missing index', { index: null }, 'index'),
  inclusion('missing tree_size', { tree_size: null }, 'tree_size'),
  { name: 'inclusion proof: two indexes', method: 'GET', url: '/v1/ledger/proof/inclusion?index=0&index=1&tree_size=2', status: 400, field: 'index' },
  { name: 'consistency proof: two values of to', method: 'GET', url: '/v1/ledger/proof/consistency?from=1&to=2&to=3', status: 400, field: 'to' },
  inclusion('tree_size 0', { tree_size: '0' }, 'tree_size'),
  inclusion('index equal to tree_size', { index: '1', tree_size: '1' }, 'index'),
  inclusion('index beyond tree_size', { index: '3', tree_size: '2' }, 'index'),
  inclusion('tree_size larger than the tree', { tree_size: '5' }, 'tree_size'),
  inclusion('tree_size of the largest safe integer', { tree_size: '9007199254740991' }, 'tree_size'),
  inclusion('an unknown field', { leaf: '0' }, 'leaf'),
  inclusion('a consistency field', { from: '1' }, 'from'),
  consistency('missing from', { from: null }, 'from'),
  consistency('missing to', { to: null }, 'to'),
  consistency('from 0', { from: '0' }, 'from'),
  consistency('to 0', { to: '0' }, 'to'),
  consistency('from larger than to', { from: '3', to: '2' }, 'from'),
  consistency('to larger than the tree', { to: '5' }, 'to'),
  consistency('to of the largest safe integer', { to: '9007199254740991' }, 'to'),
  consistency('an unknown field', { size: '2' }, 'size'),
  consistency('an inclusion field', { tree_size: '2' }, 'tree_size'),

  // Unknown query parameters: refused on every route, naming them, never silently ignored.
  ...(
    [
      ['GET', '/v1/vms'],
      ['GET', '/v1/tenants'],
      ['GET', `/v1/tenants/${A}/tokens`],
      ['GET', '/v1/admin/tokens'],
      ['DELETE', `/v1/admin/tokens/tok-${'0'.repeat(26)}`],
      ['GET', LEDGER_ENTRIES],
      ['GET', `/v1/tenants/${A}`],
      ['GET', '/v1/whoami'],
      ['DELETE', `/v1/tenants/${A}/tokens/tok-${'0'.repeat(26)}`],
      ['GET', '/v1/sessions'],
      ['DELETE', `/v1/sessions/tok-${'0'.repeat(26)}`],
      ['DELETE', `/v1/tenants/${A}?cascade=true`],
    ] as const
  ).map(([method, path]): BadRequest => ({
    name: `${method} ${path}: an unknown query parameter`,
    method,
    url: `${path}${path.includes('?') ? '&' : '?'}colour=red&size=2`,
    status: 400,
    field: 'colour',
    detail: /^unknown query parameters "colour", "size": the query takes /,
  })),
  {
    name: 'new VM: a name in the query',
    method: 'POST',
    url: '/v1/vms?name=web-9',
    as: 'tenant-admin',
    body: NEW_VM,
    status: 400,
    field: 'name',
    detail: /^unknown query parameter "name": the query takes "tenant_id"$/,
  },
  {
    name: 'tenant change: a query parameter',
    method: 'PATCH',
    url: `/v1/tenants/${A}?force=true`,
    body: { display_name: 'renamed' },
    status: 400,
    field: 'force',
    detail: /the query takes none/,
  },
  { name: 'VM delete: a query parameter', method: 'DELETE', url: '/v1/vms/vm-00000000000000000000000000?force=true', as: 'tenant-admin', status: 400, field: 'force' },
  { name: 'VM start: a query parameter', method: 'POST', url: '/v1/vms/vm-00000000000000000000000000/start?now=1', as: 'tenant-admin', status: 400, field: 'now' },
  { name: 'VM list: a misspelt name filter', method: 'GET', url: '/v1/vms?nme=web-1', as: 'tenant-admin', status: 400, field: 'nme', detail: /"name"/ },

  // The VM list's name filter takes a VM name (a DNS label).
  ...(
    [
      ['uppercase', 'Web-1'],
      ['underscores', 'web_1'],
      ['a leading hyphen', '-web'],
      ['64 characters', 'w'.repeat(64)],
      ['empty', ''],
      ['a path', encodeURIComponent('../web-1')],
    ] as const
  ).map(([why, name]): BadRequest => ({
    name: `VM list: a name filter with ${why}`,
    method: 'GET',
    url: `/v1/vms?name=${name}`,
    as: 'tenant-admin',
    status: 400,
    field: 'name',
    detail: /must be a DNS label: 1 to 63 lowercase letters, digits and hyphens/,
  })),
  { name: 'VM list: two name filters', method: 'GET', url: '/v1/vms?name=web-1&name=web-2', as: 'tenant-admin', status: 400, field: 'name' },

  // Pagination.
  // The session list as a tenant admin: a platform admin must name the tenant before the cursor is read.
  ...['/v1/vms', '/v1/tenants', `/v1/tenants/${A}/tokens`, '/v1/admin/tokens', LEDGER_ENTRIES, '/v1/sessions'].flatMap((path): BadRequest[] =>
    (
      [
        { name: `${path}: limit 0`, method: 'GET', url: `${path}?limit=0`, status: 400, field: 'limit' },
        { name: `${path}: limit 1001`, method: 'GET', url: `${path}?limit=1001`, status: 400, field: 'limit' },
        { name: `${path}: limit=abc`, method: 'GET', url: `${path}?limit=abc`, status: 400, field: 'limit' },
        { name: `${path}: negative limit`, method: 'GET', url: `${path}?limit=-5`, status: 400, field: 'limit' },
        { name: `${path}: fractional limit`, method: 'GET', url: `${path}?limit=1.5`, status: 400, field: 'limit' },
        { name: `${path}: garbage cursor`, method: 'GET', url: `${path}?cursor=garbage!!`, status: 400, field: 'cursor' },
        { name: `${path}: cursor of plain text`, method: 'GET', url: `${path}?cursor=${encodeBase64url(Buffer.from('after vm-1'))}`, status: 400, field: 'cursor' },
        { name: `${path}: cursor with a number`, method: 'GET', url: `${path}?cursor=${encodeBase64url(Buffer.from('{"after":5}'))}`, status: 400, field: 'cursor' },
        { name: `${path}: cursor of an array`, method: 'GET', url: `${path}?cursor=${encodeBase64url(Buffer.from('["vm-1"]'))}`, status: 400, field: 'cursor' },
        { name: `${path}: cursor too long`, method: 'GET', url: `${path}?cursor=${'a'.repeat(201)}`, status: 400, field: 'cursor' },
      ] satisfies BadRequest[]
    ).map((c): BadRequest => (path === '/v1/sessions' ? { ...c, as: 'tenant-admin' } : c)),
  ),
];

describe('bad requests get problem+json and change nothing', () => {
  it('names every case uniquely', () => {
    const names = CASES.map((c) => c.name);
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([]);
  });

  let h: Harness;
  let tenantAdmin: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A);
    tenantAdmin = (await h.issueToken(A, 'service:tenant-admin')).token;
    const vm = await h.request('POST', '/v1/vms', { token: tenantAdmin, body: { name: 'web-1' } });
    expect(vm.statusCode).toBe(201);
    // The ledger cases rely on this size (a tree_size or to of 5 is beyond the tree).
    expect(await h.ledgerCount()).toBe(4);
  });
  afterAll(async () => {
    await h.close();
  });

  it('every valid body the cases start from is accepted', async () => {
    // Guards the table: each case differs from one of these in one place, so each case can fail.
    // Run on a harness of its own, so that the ids and names stay free for the cases.
    const g = await startHarness();
    try {
      await g.createTenant(A);
      const admin = (await g.issueToken(A, 'service:tenant-admin')).token;
      for (const [method, url, token, body] of [
        ['POST', '/v1/tenants', g.adminToken, NEW_TENANT],
        ['PATCH', `/v1/tenants/${A}`, g.adminToken, { display_name: 'x', max_vms: 0, force: true }],
        ['PATCH', `/v1/tenants/${A}`, g.adminToken, { max_vms: 10 }],
        ['POST', '/v1/vms', admin, NEW_VM],
        ['GET', `/v1/vms?name=${NEW_VM.name}`, admin, undefined],
        ['PATCH', `/v1/tenants/${A}`, g.adminToken, { display_name: 'renamed' }],
        ['POST', `/v1/tenants/${A}/tokens`, g.adminToken, NEW_TOKEN],
        ['GET', `/v1/sessions?tenant_id=${A}&limit=10`, g.adminToken, undefined],
        ['GET', '/v1/sessions?limit=10', admin, undefined],
        ['GET', ledgerUrl(LEDGER_ENTRIES, VALID_ENTRIES_QUERY, {}), g.adminToken, undefined],
        ['GET', ledgerUrl(LEDGER_ENTRIES, VALID_ENTRIES_QUERY, { tenant_id: null }), admin, undefined],
        ['GET', ledgerUrl('/v1/ledger/proof/inclusion', VALID_INCLUSION, {}), g.adminToken, undefined],
        ['GET', ledgerUrl('/v1/ledger/proof/consistency', VALID_CONSISTENCY, {}), admin, undefined],
      ] as const) {
        const res = await g.request(method, url, { token, body });
        expect(res.statusCode, `${method} ${url}: ${res.body}`).toBeLessThan(300);
      }
    } finally {
      await g.close();
    }
  });

  it.each(CASES)('$name → $status', async (c) => {
    const before = await snapshotState(h);
    const token = c.as === 'tenant-admin' ? tenantAdmin : h.adminToken;
    const headers = c.payload !== undefined ? { 'content-type': 'application/json', ...c.headers } : c.headers;
    const res = await h.request(c.method, c.url, {
      token,
      ...(c.body !== undefined ? { body: c.body } : {}),
      ...(c.payload !== undefined ? { payload: c.payload } : {}),
      ...(headers ? { headers } : {}),
    });
    const problem = expectProblem(res, c.status);
    if (c.status === 400) {
      expect(problem.code).toBe('invalid_input');
      expect(problem.field).toBe(c.field);
      // Details speak of values, fields and rules, never of the schema (ajv's words, a regex).
      expect(problem.detail).not.toMatch(/constant|must NOT|properties|must match|must be (integer|string|object|boolean)\b|[\^$]|\[a-z/);
    }
    if (c.detail) expect(problem.detail).toMatch(c.detail);
    expect(await snapshotState(h)).toEqual(before);
  });
});

describe('bad tokens get 401, insufficient scopes 403, and change nothing', () => {
  let h: Harness;
  let clock: ManualClock;
  let inputToken: string;

  beforeAll(async () => {
    h = await startHarness();
    clock = h.clock as ManualClock;
    await h.createTenant(A);
    inputToken = (await h.issueToken(A, 'tenant:input')).token;
  });
  afterAll(async () => {
    await h.close();
  });

  /** Replaces one byte of block `block`'s signature, keeping the token well-formed. */
  function flipSignatureByte(token: string, block = 0): string {
    const parts = token.split('.');
    const at = 2 + block * 2;
    const signature = Buffer.from(parts[at]!, 'base64url');
    signature.writeUInt8(signature.readUInt8(10) ^ 0x01, 10);
    parts[at] = encodeBase64url(signature);
    return parts.join('.');
  }

  /** A root token for tenant A with tenant:input, signed by a key the server has never seen. */
  function mintWithStrangerKey(claimRealKid: boolean): string {
    const stranger = generateKeyPair();
    const iat = Math.floor(clock.now() / 1000);
    return mintRootToken(
      {
        kid: claimRealKid ? h.keyring.activeKid : keyId(stranger.publicKey),
        tid: A,
        sub: publicKeyText(generateKeyPair()),
        scp: ['tenant:input'],
        iat,
        exp: iat + 3600,
        jti: 'tok-stranger',
      },
      stranger.privateKey,
    );
  }

  /** Sends a request that would create a VM if the authorization were accepted. */
  async function tryCreateVm(authorization: string | undefined) {
    const before = await snapshotState(h);
    const res = await h.request('POST', '/v1/vms', {
      body: { name: 'should-not-exist', disk_gb: 1 },
      ...(authorization !== undefined ? { headers: { authorization } } : {}),
    });
    return { res, before };
  }

  const TOKEN_CASES: { name: string; authorization: () => Promise<string | undefined> | string | undefined; tokenError?: string }[] = [
    { name: 'no Authorization header', authorization: () => undefined },
    { name: '"Bearer" with nothing', authorization: () => 'Bearer' },
    { name: '"Bearer " with only a space', authorization: () => 'Bearer ' },
    { name: 'Basic credentials', authorization: () => 'Basic xyz' },
    { name: 'the token without a scheme', authorization: () => inputToken },
    { name: 'two tokens', authorization: () => `Bearer ${inputToken} ${inputToken}` },
    { name: 'garbage', authorization: () => 'Bearer garbage', tokenError: 'malformed' },
    { name: 'only the prefix', authorization: () => 'Bearer pct1.', tokenError: 'malformed' },
    { name: 'a truncated token', authorization: () => `Bearer ${inputToken.slice(0, -10)}`, tokenError: 'malformed' },
    { name: 'a token missing its signature', authorization: () => `Bearer ${inputToken.split('.').slice(0, 2).join('.')}`, tokenError: 'malformed' },
    { name: 'a token with one signature byte changed', authorization: () => `Bearer ${flipSignatureByte(inputToken)}`, tokenError: 'bad_signature' },
    {
      name: 'a token whose payload was edited to another tenant',
      authorization: () => {
        const [prefix, payload, signature] = inputToken.split('.') as [string, string, string];
        const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
        return `Bearer ${[prefix, encodeBase64url(Buffer.from(JSON.stringify({ ...claims, tid: 'other' }))), signature].join('.')}`;
      },
      tokenError: 'bad_signature',
    },
    {
      name: 'a token whose payload was edited to platform-admin',
      authorization: () => {
        const [, payload, signature] = inputToken.split('.') as [string, string, string];
        const { tid: _tid, ...claims } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
        const forged = encodeClaims({ ...claims, scp: ['service:platform-admin'] } as unknown as BlockClaims);
        return `Bearer ${serializeToken([{ payload: forged, signature: Buffer.from(signature, 'base64url') }])}`;
      },
      tokenError: 'bad_signature',
    },
    { name: 'a token signed by an unknown platform key', authorization: () => `Bearer ${mintWithStrangerKey(false)}`, tokenError: 'unknown_key' },
    { name: 'a token signed by another key under the real kid', authorization: () => `Bearer ${mintWithStrangerKey(true)}`, tokenError: 'bad_signature' },
    { name: 'a token over 4 KiB', authorization: () => `Bearer pct1.${'A'.repeat(5000)}.${'A'.repeat(86)}`, tokenError: 'too_large' },
    {
      name: 'an expired token (seen once while valid, so cached)',
      authorization: async () => {
        const { token } = await h.issueToken(A, 'tenant:input', 60);
        expect((await h.request('GET', '/v1/whoami', { token })).statusCode).toBe(200);
        clock.advance(60_000);
        return `Bearer ${token}`;
      },
      tokenError: 'expired',
    },
    {
      name: 'an expired token never seen before',
      authorization: async () => {
        const { token } = await h.issueToken(A, 'tenant:input', 30);
        clock.advance(31_000);
        return `Bearer ${token}`;
      },
      tokenError: 'expired',
    },
    {
      name: 'a revoked token',
      authorization: async () => {
        const { token, tokenId } = await h.issueToken(A, 'tenant:input');
        expect((await h.request('GET', '/v1/whoami', { token })).statusCode).toBe(200);
        const revoke = await h.request('DELETE', `/v1/tenants/${A}/tokens/${tokenId}`, { token: h.adminToken });
        expect(revoke.statusCode).toBe(200);
        return `Bearer ${token}`;
      },
    },
    {
      name: 'a token of a retired platform key (seen once while valid, so cached)',
      authorization: async () => {
        // Rotate to a key of its own, use a token it signs, then rotate on and retire that key:
        // the key signing the other cases' tokens stays in the ring.
        const deps = { store: h.store, clock, ids: makeIdSource(clock) };
        const kek = loadKeyEncryptionKey(h.dataDir);
        const { kid } = await rotatePlatformKey(deps, kek);
        await h.keyring.refresh();
        const { token } = await h.issueToken(A, 'tenant:input');
        expect((await h.request('GET', '/v1/whoami', { token })).statusCode).toBe(200);
        await rotatePlatformKey(deps, kek);
        await retirePlatformKey(deps, kid);
        await h.keyring.refresh();
        return `Bearer ${token}`;
      },
      tokenError: 'unknown_key',
    },
    {
      name: 'a token of a deleted tenant',
      authorization: async () => {
        await h.createTenant('doomed');
        const { token } = await h.issueToken('doomed', 'tenant:input');
        expect((await h.request('GET', '/v1/whoami', { token })).statusCode).toBe(200);
        expect((await h.request('DELETE', '/v1/tenants/doomed', { token: h.adminToken })).statusCode).toBe(204);
        return `Bearer ${token}`;
      },
    },
  ];

  it.each(TOKEN_CASES)('$name → 401', async ({ authorization, tokenError }) => {
    const header = await authorization();
    const { res, before } = await tryCreateVm(header);
    const problem = expectProblem(res, 401);
    expect(problem.code).toBe('unauthenticated');
    if (tokenError !== undefined) expect(problem.token_error).toBe(tokenError);
    expect(await snapshotState(h)).toEqual(before);
  });

  it('a forged platform-admin token cannot create a tenant', async () => {
    const before = await snapshotState(h);
    const res = await h.request('POST', '/v1/tenants', {
      headers: { authorization: `Bearer ${flipSignatureByte(h.adminToken)}` },
      body: NEW_TENANT,
    });
    expect(expectProblem(res, 401).token_error).toBe('bad_signature');
    expect(await snapshotState(h)).toEqual(before);
  });

  it('a root token signed by the real platform key but without the domain prefix is refused', async () => {
    // Root signatures cover "ppn-token-v1/root\n" || payload, so a signature made over the bare payload
    // (as another protocol using the same key might) must not verify.
    const [, payload] = inputToken.split('.') as [string, string];
    const bytes = Buffer.from(payload, 'base64url');
    expect(rootSigningInput(bytes).equals(bytes)).toBe(false);
    const bare = serializeToken([{ payload: bytes, signature: sign(null, bytes, h.keyring.activeKey) }]);
    const { res, before } = await tryCreateVm(`Bearer ${bare}`);
    expect(expectProblem(res, 401).token_error).toBe('bad_signature');
    expect(await snapshotState(h)).toEqual(before);
  });

  it.each([
    ['tenant:read', 'POST', '/v1/vms', { name: 'nope', disk_gb: 1 }],
    ['tenant:user', 'POST', '/v1/vms', { name: 'nope', disk_gb: 1 }],
    ['node:agent', 'GET', '/v1/vms', undefined],
    ['tenant:input', 'POST', `/v1/tenants/${A}/tokens`, NEW_TOKEN],
    ['service:tenant-admin', 'POST', '/v1/tenants', NEW_TENANT],
    ['service:tenant-admin', 'PATCH', `/v1/tenants/${A}`, { max_vms: 1000 }],
  ] as const)('a %s token on %s %s → 403', async (scope, method, url, body) => {
    const { token, keys } = await h.issueToken(A, scope);
    const before = await snapshotState(h);
    // Signed by the holder, as node:agent requests must be and other tokens may be: the refusal is the scope's.
    const res = await h.request(method, url, { token, signWith: keys.privateKey, ...(body !== undefined ? { body } : {}) });
    expect(expectProblem(res, 403).code).toBe('forbidden');
    expect(await snapshotState(h)).toEqual(before);
  });

  it('a tenant admin cannot issue a scope it does not hold', async () => {
    // tenant-admin implies every tenant scope, so only platform-admin is above it; that is refused as
    // input (400) before scopes are compared. A tenant:input holder cannot reach this route at all.
    const { token } = await h.issueToken(A, 'service:tenant-admin');
    const before = await snapshotState(h);
    const res = await h.request('POST', `/v1/tenants/${A}/tokens`, { token, body: tokenWith({ scope: 'service:platform-admin' }) });
    expect(expectProblem(res, 400).field).toBe('scope');
    expect(await snapshotState(h)).toEqual(before);
  });
});

describe('conflicts get 409 and change nothing', () => {
  let h: Harness;
  let tenantAdmin: string;

  beforeAll(async () => {
    h = await startHarness();
    await h.createTenant(A, { max_vms: 5, storage_quota_gb: 100 });
    tenantAdmin = (await h.issueToken(A, 'service:tenant-admin')).token;
    for (const name of ['web-1', 'web-2', 'web-3']) {
      const res = await h.request('POST', '/v1/vms', { token: tenantAdmin, body: { name, disk_gb: 10 } });
      expect(res.statusCode).toBe(201);
    }
  });
  afterAll(async () => {
    await h.close();
  });

  async function expectConflict(method: string, url: string, body?: unknown): Promise<void> {
    const before = await snapshotState(h);
    const res = await h.request(method, url, { token: h.adminToken, ...(body !== undefined ? { body } : {}) });
    expect(expectProblem(res, 409).code).toBe('conflict');
    expect(await snapshotState(h)).toEqual(before);
  }

  it('a duplicate tenant id → 409', async () => {
    await expectConflict('POST', '/v1/tenants', { tenant_id: A, display_name: 'Impostor' });
  });

  it("reusing a deleted tenant's id → 409", async () => {
    await h.createTenant('gone-corp');
    expect((await h.request('DELETE', '/v1/tenants/gone-corp', { token: h.adminToken })).statusCode).toBe(204);
    await expectConflict('POST', '/v1/tenants', { tenant_id: 'gone-corp', display_name: 'Gone again' });
  });

  it('deleting a tenant that still has VMs without cascade → 409', async () => {
    await expectConflict('DELETE', `/v1/tenants/${A}`);
  });

  it('a duplicate VM name in the tenant → 409', async () => {
    const before = await snapshotState(h);
    const res = await h.request('POST', '/v1/vms', { token: tenantAdmin, body: { name: 'web-1' } });
    expectProblem(res, 409);
    expect(await snapshotState(h)).toEqual(before);
  });

  it.each([
    [{ max_vms: 2 }, ['max_vms']],
    [{ storage_quota_gb: 29 }, ['storage_quota_gb']],
    [{ max_vcpus: 1 }, ['max_vcpus']],
    [{ max_vms: 0, storage_quota_gb: 0 }, ['max_vms', 'storage_quota_gb']],
  ])('lowering %o below usage without force → 409 naming %o', async (change, policies) => {
    const before = await snapshotState(h);
    const res = await h.request('PATCH', `/v1/tenants/${A}`, { token: h.adminToken, body: change });
    const problem = expectProblem(res, 409);
    expect([...(problem['violated-policies'] as string[])].sort()).toEqual([...policies].sort());
    expect(problem.usage).toMatchObject({ vms: 3, storage_gb: 30 });
    expect(await snapshotState(h)).toEqual(before);
  });

  it('lowering max_vms below usage with force → 200, recorded, and the VMs are untouched', async () => {
    const before = await snapshotState(h);
    const res = await h.request('PATCH', `/v1/tenants/${A}`, { token: h.adminToken, body: { max_vms: 1, force: true } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ tenant_id: A, max_vms: 1, usage: { vms: 3 } });
    const after = await snapshotState(h);
    expect(after.vms).toEqual(before.vms);
    expect(after.ledgerEntries).toBe(before.ledgerEntries + 1);
    const [entry] = (await h.ledgerLines()).slice(-1);
    expect(entry).toMatchObject({ event_type: 'TENANT_UPDATED', tenant_id: A, data: { changes: { max_vms: { from: 5, to: 1 } }, force: true } });
    // Now over quota, the next VM is refused.
    const next = await h.request('POST', '/v1/vms', { token: tenantAdmin, body: { name: 'web-4' } });
    expect(expectProblem(next, 429)['violated-policies']).toEqual(['max_vms']);
  });
});
