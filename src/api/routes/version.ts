/**
 * GET /v1/version: which release this server is, the oldest agent and client it supports, and the
 * store schema it expects (src/version.ts has the skew policy). Public: an operator checking a
 * rolling upgrade and an agent checking its server need it before, or without, any token.
 */
import { Type } from 'typebox';
import type { TypedApp } from '../deps.js';
import { latestMigration } from '../../store/migrations.js';
import { describeServerVersion } from '../../version.js';

const VersionAnswer = Type.Object({
  version: Type.String({ description: "this server's release (package.json version)" }),
  api: Type.String({ description: 'the API version, the prefix of its paths' }),
  min_agent: Type.String({ description: 'the oldest service-vm-host release this server supports' }),
  min_client: Type.String({ description: 'the oldest ppn release this server supports' }),
  store_schema: Type.String({ description: 'the latest store migration this server knows' }),
});

export function registerVersionRoutes(app: TypedApp): void {
  const answer = describeServerVersion(latestMigration());
  app.get('/v1/version', { schema: { security: [], response: { 200: VersionAnswer } } }, async () => answer);
}
