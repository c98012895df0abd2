/**
 * Background work (src/control/background.ts): a job woken early runs at once; a wake during a run
 * makes it run exactly once more after it, however many wakes came; a server that does not run the
 * background work ignores wakes. The interval is an hour, so only wakes and `atStart` run the job.
 */
import { describe, expect, it } from 'vitest';
import { BackgroundWork } from '../../src/control/background.js';

/** A job whose runs each wait until the test lets them finish. */
function gatedJob(atStart = false) {
  const runs: (() => void)[] = [];
  const ran: string[] = [];
  const job = { name: 'gated', everyMs: 3_600_000, atStart, run: () => new Promise<void>((done) => runs.push(done)) };
  const work = new BackgroundWork([job], { ran: (name) => ran.push(name), failed: () => undefined });
  /** Lets the oldest unfinished run finish, and waits until its completion is reported. */
  const finish = async () => {
    const before = ran.length;
    runs.shift()!();
    while (ran.length === before) await Promise.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { work, runs, ran, finish };
}

describe('background work', () => {
  it('a wake runs the job at once, and wakes during a run make exactly one more run after it', async () => {
    const { work, runs, ran, finish } = gatedJob();
    work.start();
    expect(runs).toHaveLength(0);
    work.wake('gated');
    expect(runs).toHaveLength(1);
    work.wake('gated');
    work.wake('gated');
    expect(runs).toHaveLength(1);
    await finish();
    expect(runs).toHaveLength(1);
    await finish();
    expect(runs).toHaveLength(0);
    expect(ran).toEqual(['gated', 'gated']);
    work.stop();
  });

  it('wakes do nothing while the work is stopped, and atStart runs the job once when it starts', async () => {
    const { work, runs, finish } = gatedJob(true);
    work.wake('gated');
    expect(runs).toHaveLength(0);
    work.start();
    expect(runs).toHaveLength(1);
    await finish();
    work.stop();
    work.wake('gated');
    expect(runs).toHaveLength(0);
  });
});
