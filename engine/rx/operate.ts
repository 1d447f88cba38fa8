// The one helper every krsi RxJS operator is built through: handlers run inside try/catch and a
// throw becomes the stream's error notification (never an exception escaping into the producer);
// after an error, further values are ignored and the upstream subscription is dropped.
import { Observable, type OperatorFunction, type Subscriber } from 'rxjs';

export interface Handlers<T> {
  next(value: T): void;
  /** before the output completes (flush state); default: nothing */
  complete?(): void;
  /** teardown (timers); runs on completion, error and unsubscribe */
  finalize?(): void;
}

export function operate<T, R>(name: string, setup: (out: Subscriber<R>) => Handlers<T>): OperatorFunction<T, R> {
  return (source) =>
    new Observable<R>((out) => {
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
            handlers.complete?.();
            out.complete();
          } catch (e) {
            fail(e);
          }
        },
      });
      return () => {
        sub.unsubscribe();
        handlers.finalize?.();
      };
    });
}
