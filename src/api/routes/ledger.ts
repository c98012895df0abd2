/**
 * /v1/ledger: the ledger's public key and its latest signed checkpoint (SPEC §8). A checkpoint shows
 * only the tree size and root, so any valid token may read it; the key is public.
 */
import type { FastifyReply } from 'fastify';
import type { RouteDeps, TypedApp } from '../app.js';
import { PpnError } from '../../errors.js';
import { latestCheckpoint } from '../../store/checkpoints.js';

export function registerLedgerRoutes(app: TypedApp, deps: RouteDeps): void {
  app.get('/v1/ledger/key', { schema: { hide: true } }, async (_request, reply: FastifyReply) => {
    if (!deps.ledgerSigner) throw new PpnError('not_found', 'this server signs no checkpoints');
    return reply.type('text/plain; charset=utf-8').send(`${deps.ledgerSigner.verifierKey}\n`);
  });

  app.get('/v1/ledger/checkpoint', { config: { scope: 'authenticated' }, schema: { hide: true } }, async (_request, reply: FastifyReply) => {
    const checkpoint = await latestCheckpoint(deps.store.db);
    if (!checkpoint) throw new PpnError('not_found', 'no checkpoint has been signed yet');
    return reply.type('text/plain; charset=utf-8').send(checkpoint.note);
  });
}
