/**
 * Background work: jobs that must run on exactly one server at a time (SPEC §1). The store elects
 * the leader (store.electLeader); this runs the jobs on an interval while this server leads and
 * stops them when it does not. A run that is still going when its next turn comes is not doubled.
 */
export interface BackgroundJob {
  name: string;
  everyMs: number;
  /** Also run once as soon as the work starts, not only after the first interval. */
  atStart?: boolean;
  run(): Promise<void>;
}

export interface BackgroundEvents {
  ran(job: string): void;
  failed(job: string, error: unknown): void;
}

export class BackgroundWork {
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly jobs: readonly BackgroundJob[],
    private readonly events: BackgroundEvents,
  ) {}

  get running(): boolean {
    return this.timers.length > 0;
  }

  start(): void {
    if (this.running) return;
    this.timers = this.jobs.map((job) => {
      let busy = false;
      const turn = () => {
        if (busy) return;
        busy = true;
        job
          .run()
          .then(() => this.events.ran(job.name))
          .catch((error: unknown) => this.events.failed(job.name, error))
          .finally(() => (busy = false));
      };
      const timer = setInterval(turn, job.everyMs);
      timer.unref();
      if (job.atStart) turn();
      return timer;
    });
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }
}
