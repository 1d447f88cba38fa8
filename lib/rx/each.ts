// each(name, fn): a stage that hands every value to `fn` (a sink: the recorder, metrics, the output)
// and passes it on unchanged. Built through operate(), so a throw in `fn` becomes the stream's error
// and the stage shows in the pipeline trace under `name`.
import type { MonoTypeOperatorFunction } from 'rxjs';
import { operate } from './operate.ts';

export function each<T>(name: string, fn: (value: T) => void): MonoTypeOperatorFunction<T> {
  return operate<T, T>(name, (out) => ({
    next(v) {
      fn(v);
      out.next(v);
    },
  }));
}
