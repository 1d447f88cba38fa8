// heartbeat: while the source is live, every `every` ms (on `scheduler`) add a Tick carrying the
// event clock's current time, so absences fire when their deadline passes even if no event comes.
// Live only: replay never needs it (event time advances with the log).
// Without `clock`, event time is extrapolated from the latest event seen: its ts plus the scheduler
// time elapsed since it passed (no tick before the first event).
import { asyncScheduler, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { operate } from '../../lib/rx/operate.ts';
import type { Tick } from './evaluate.ts';

export interface HeartbeatOptions {
  /** period in scheduler time (ms) */
  every: number;
  /** the events' clock in ns (live: CLOCK_BOOTTIME, as the BPF programs stamp events) */
  clock?: () => number;
  scheduler?: SchedulerLike;
}

function lastTs(v: unknown): number | undefined {
  if (Array.isArray(v)) return v.length ? lastTs(v[v.length - 1]) : undefined;
  const ts = (v as { ts?: unknown } | null)?.ts;
  return typeof ts === 'number' ? ts : undefined;
}

export function heartbeat<T>(o: HeartbeatOptions): OperatorFunction<T, T | Tick> {
  const scheduler = o.scheduler ?? asyncScheduler;
  return operate<T, T | Tick>('heartbeat', (out) => {
    let seenTs = -1;
    let seenAt = 0;
    const clock = o.clock ?? (() => (seenTs < 0 ? -1 : seenTs + Math.round((scheduler.now() - seenAt) * 1e6)));
    const timer = scheduler.schedule(function () {
      const now = clock();
      if (now >= 0) out.next({ tick: now });
      this.schedule(undefined, o.every);
    }, o.every);
    return {
      next(v) {
        if (!o.clock) {
          const ts = lastTs(v);
          if (ts !== undefined && ts >= seenTs) {
            seenTs = ts;
            seenAt = scheduler.now();
          }
        }
        out.next(v);
      },
      // runs on completion too (operate's teardown), so no complete handler is needed
      finalize() {
        timer.unsubscribe();
      },
    };
  });
}
