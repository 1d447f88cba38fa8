// heartbeat: while the source is live, every `every` ms (on `scheduler`) add a Tick carrying the
// event clock's current time, so absences fire when their deadline passes even if no event comes.
// Live only: replay never needs it (event time advances with the log).
import { asyncScheduler, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { operate } from './operate.ts';
import type { Tick } from './evaluate.ts';

export interface HeartbeatOptions {
  /** period in scheduler time (ms) */
  every: number;
  /** the events' clock in ns (live: CLOCK_BOOTTIME, as the BPF programs stamp events) */
  clock: () => number;
  scheduler?: SchedulerLike;
}

export function heartbeat<T>(o: HeartbeatOptions): OperatorFunction<T, T | Tick> {
  return operate<T, T | Tick>('heartbeat', (out) => {
    const timer = (o.scheduler ?? asyncScheduler).schedule(function () {
      out.next({ tick: o.clock() });
      this.schedule(undefined, o.every);
    }, o.every);
    return {
      next(v) {
        out.next(v);
      },
      complete() {
        timer.unsubscribe();
      },
      finalize() {
        timer.unsubscribe();
      },
    };
  });
}
