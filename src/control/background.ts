/**
 * Background work: jobs that must run on exactly one server at a time (SPEC §1). The store elects
 * the leader (store.electLeader); this runs the jobs on an interval while this server leads and
 * stops them when it does not. A run that is still going when its next turn comes is not doubled;
 * a job can also be woken early (`wake`), and a wake during a run makes it run once more after;
 * `atStart` runs it once as soon as the work starts.
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

interface Running {
  timer: NodeJS.Timeout;
  /** Starts a run now, or once more after the current one. */
  kick(): void;
}

export class BackgroundWork {
  private readonly active = new Map<string, Running>();

  constructor(
    private readonly jobs: readonly BackgroundJob[],
    private readonly events: BackgroundEvents,
  ) {}

  get running(): boolean {
    return this.active.size > 0;
  }

  start(): void {
    if (this.running) return;
    for (const job of this.jobs) {
      let busy = false;
      let again = false;
      const kick = (): void => {
        if (busy) {
          again = true;
          return;
        }
        busy = true;
        again = false;
        job
          .run()
          .then(() => this.events.ran(job.name))
          .catch((error: unknown) => this.events.failed(job.name, error))
          .finally(() => {
            busy = false;
            if (again && this.active.get(job.name)?.kick === kick) kick();
          });
      };
      const timer = setInterval(() => {
        if (!busy) kick();
      }, job.everyMs);
      timer.unref();
      this.active.set(job.name, { timer, kick });
      if (job.atStart) kick();
    }
  }

  /** Runs `job` soon if this server runs the background work now; otherwise does nothing. */
  wake(job: string): void {
    this.active.get(job)?.kick();
  }

  stop(): void {
    for (const { timer } of this.active.values()) clearInterval(timer);
    this.active.clear();
  }
}
