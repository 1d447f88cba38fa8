// fromAsync(name, open, pace): a pipeline source reading an async iterable (a log reader) at the pace
// its sinks allow: after each value it awaits `pace()` (the output sink draining to a slow terminal),
// so a large log never piles up in memory. Unsubscribing stops the reader (its iterator's return()).
// Counted in the pipeline trace under `name`.
import { Observable } from 'rxjs';
import { stageCount, stageRan } from './trace.ts';

export function fromAsync<T>(name: string, open: () => AsyncIterable<T>, pace?: () => Promise<void>): Observable<T> {
  const count = stageCount(name);
  return new Observable<T>((out) => {
    let stopped = false;
    stageRan(count);
    void (async () => {
      const it = open()[Symbol.asyncIterator]();
      try {
        for (;;) {
          const r = await it.next();
          if (r.done || stopped) break;
          count.values++;
          out.next(r.value);
          if (pace) await pace();
          if (stopped) break;
        }
      } finally {
        if (stopped) await it.return?.();
      }
    })().then(
      () => out.complete(),
      (e) => out.error(e),
    );
    return () => {
      stopped = true;
    };
  });
}
