// The one helper every krsi RxJS operator is built through: handlers run inside try/catch and a
// throw becomes the stream's error notification (never an exception escaping into the producer);
// after an error, further values are ignored and the upstream subscription is dropped. Each operator
// counts what it passes on under its name (lib/rx/trace.ts).
import { Observable, type OperatorFunction } from 'rxjs';
import { stageCount, stageRan } from './trace.ts';

/** what a stage emits into */
export interface Out<R> {
  next(value: R): void;
  error(err: unknown): void;
  complete(): void;
  readonly closed: boolean;
}

export interface Handlers<T> {
  next(value: T): void;
  /** before the output completes (flush state); default: nothing. A promise (a stage still holding
   *  values) delays the completion until it settles */
  complete?(): void | Promise<void>;
  /** teardown (timers); runs on completion, error and unsubscribe */
  finalize?(): void;
}

export function operate<T, R>(name: string, setup: (out: Out<R>) => Handlers<T>): OperatorFunction<T, R> {
  const count = stageCount(name);
  return (source) =>
    new Observable<R>((downstream) => {
      // what the stage passes on is counted (per value: a batch counts once)
      const out: Out<R> = {
        next: (v) => {
          count.values++;
          downstream.next(v);
        },
        error: (e) => downstream.error(e),
        complete: () => downstream.complete(),
        get closed() {
          return downstream.closed;
        },
      };
      let h: Handlers<T> | undefined;
      let failed = false;
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        out.error(e instanceof Error ? e : new Error(`${name}: ${String(e)}`));
      };
      try {
        h = setup(out);
      } catch (e) {
        fail(e);
        return;
      }
      const handlers = h;
      const sub = source.subscribe({
        next(v) {
          if (failed) return;
          try {
            handlers.next(v);
          } catch (e) {
            fail(e);
          }
        },
        error(e) {
          fail(e);
        },
        complete() {
          if (failed) return;
          try {
            const flushed = handlers.complete?.();
            if (flushed === undefined) out.complete();
            else flushed.then(() => failed || out.complete(), fail);
          } catch (e) {
            fail(e);
          }
        },
      });
      // counted after the upstream subscribed, so the trace lists the source first
      stageRan(count);
      return () => {
        sub.unsubscribe();
        handlers.finalize?.();
      };
    });
}
