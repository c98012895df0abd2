/**
 * Shared checks for the API tests: the problem+json shape every error must have (SPEC §3), and a
 * snapshot of everything a request could change, so a test can prove a refused request changed
 * nothing (SPEC §9: bad input "changes nothing").
 */
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { Harness } from '../support/harness.js';

export interface StateSnapshot {
  ledgerEntries: number;
  tenants: unknown[];
  tokens: unknown[];
  vms: unknown[];
  blockUsage: unknown[];
  nodes: unknown[];
  consoles: unknown[];
}

/** Every row of every mutable table, plus the ledger's size (entries can only be appended). */
export async function snapshotState(harness: Harness): Promise<StateSnapshot> {
  const db = harness.store.db;
  return {
    ledgerEntries: await harness.ledgerCount(),
    tenants: await db.selectFrom('tenants').selectAll().orderBy('tenant_id').execute(),
    tokens: await db.selectFrom('tokens').selectAll().orderBy('token_id').execute(),
    vms: await db.selectFrom('vms').selectAll().orderBy('vm_id').execute(),
    // What each token block has created, counted against its limits (SPEC §5 sub-quotas).
    blockUsage: await db.selectFrom('token_block_usage').selectAll().orderBy('tenant_id').orderBy('block_id').execute(),
    nodes: await db.selectFrom('nodes').selectAll().orderBy('tenant_id').orderBy('node_id').execute(),
    consoles: await db.selectFrom('vm_consoles').selectAll().orderBy('vm_id').execute(),
  };
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  request_id: string;
  field?: string;
  [extension: string]: unknown;
}

/** Asserts an RFC 9457 problem document with `status`, and returns its body. */
export function expectProblem(res: LightMyRequestResponse, status: number): ProblemBody {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json<ProblemBody>();
  expect(typeof body.type).toBe('string');
  expect(body.type.length).toBeGreaterThan(0);
  expect(typeof body.title).toBe('string');
  expect(body.status).toBe(status);
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  expect(typeof body.instance).toBe('string');
  // No internals leak into answers (SPEC §9).
  expect(res.body).not.toMatch(/"stack"|\bat \S+\.[cm]?[jt]s:\d+|SQLITE_|\binsert into\b|\bselect \S+ from\b/i);
  return body;
}

/** The parts of a problem body that do not depend on which request produced it. */
export function problemWithoutRequest(body: ProblemBody): Omit<ProblemBody, 'request_id' | 'instance'> {
  const { request_id: _requestId, instance: _instance, ...rest } = body;
  return rest;
}
