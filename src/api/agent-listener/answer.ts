/**
 * The agent listener's main-thread side: answers the calls its worker passes on (worker.ts) with the
 * API's own checks, in the API's order, and the same answers as the API's routes (nodeAnswers):
 * the ledger refusal, the token (cached verification, revocation, tenant), the possession checks that
 * need the token (wrong_key, the nonce, on the record the API port uses too), then `admit` (rate
 * limit, tenant state, the node:agent rule, the session) and the answer.
 */
import type { FastifyBaseLogger } from 'fastify';
import { ledgerRefusal } from '../../control/ledger-check.js';
import { originFor } from '../context.js';
import type { RouteDeps } from '../deps.js';
import type { AuthChecks, RequestFacts } from '../plugins/auth.js';
import { toPpnError } from '../problem.js';
import type { NodeAnswers } from '../routes/nodes.js';
import type { Capacity, ObservedVm } from '../../control/nodes.js';
import type { AgentAnswer, AgentCall } from './protocol.js';

export type AnswerAgentCall = (call: AgentCall) => Promise<AgentAnswer>;

export function answerAgentCalls(deps: RouteDeps, auth: AuthChecks, nodes: NodeAnswers, log: FastifyBaseLogger): AnswerAgentCall {
  return async (call) => {
    const answer: AgentAnswer = { status: 200, headers: {}, body: null, problem: null, principal: null };
    try {
      if (deps.ledgerProblem) throw ledgerRefusal(deps.ledgerProblem);
      const known = await auth.authenticate(call.authorization);
      const { token } = known;
      answer.principal = { tenantId: token.tenantId, tokenId: token.tokenId };
      const tenant = await auth.checkStanding(token);
      const why = auth.whyProofIsNeeded(token, tenant);
      const facts: RequestFacts = {
        method: call.method,
        ip: call.ip,
        scope: 'node:agent',
        header: (name, value) => void (answer.headers[name] = value),
        // Never asked: a platform-admin token is refused on a node's route before this (admit).
        clientCertified: () => false,
      };
      if (why) {
        // The API would wait for the body before checking the signature: a body it could not read ends here.
        if (call.stage === 'authenticate') return answer;
        await auth.concludePossession(call.examination!, token, why);
      }
      const caller = await auth.admit(known, tenant, facts);
      if (call.stage !== 'answer') return answer;
      const origin = originFor(caller, call.requestId);
      switch (call.op) {
        case 'enroll':
          answer.status = 201;
          answer.body = JSON.stringify(await nodes.enroll(origin, caller, call.body as { node_id: string; capacity: Capacity }));
          break;
        case 'heartbeat':
          answer.body = await nodes.heartbeat(origin, caller, call.params.node_id!, call.body as { capacity: Capacity; vms: ObservedVm[] });
          break;
        case 'console':
          await nodes.uploadConsole(caller, call.params.node_id!, call.params.vm_id!, call.body as { data: string });
          answer.status = 204;
          break;
      }
      return answer;
    } catch (error) {
      const problem = toPpnError(error);
      if (problem.code === 'internal') log.error({ err: error, reqId: call.requestId }, 'unhandled error on the agent listener');
      answer.problem = { code: problem.code, detail: problem.message, headers: problem.headers, extensions: problem.extensions };
      return answer;
    }
  };
}
