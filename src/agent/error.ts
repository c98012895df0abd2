/** The node agent's errors: a closed set of codes, each with a message an operator can act on. */
export type AgentErrorCode =
  'bad_vm_id' | 'bad_image_name' | 'image_missing' | 'disk_failed' | 'not_initialised' | 'not_enrolled' | 'server_refused' | 'server_unreachable' | 'bad_reply';

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: ErrorOptions & { status?: number; problem?: Record<string, unknown> },
  ) {
    super(message, options);
    this.status = options?.status;
    this.problem = options?.problem ?? {};
  }
  /** For server_refused: the HTTP status the server answered. */
  readonly status: number | undefined;
  /** For server_refused: the server's problem+json body (RFC 9457), or {} when it sent none. */
  readonly problem: Record<string, unknown>;
}
