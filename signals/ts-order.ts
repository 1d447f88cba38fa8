// tsOrder: keeps event time non-decreasing across batches from more than one source (the signals'
// ring and the enforcer's ring of kernel denials, merged): an event older than one already passed on
// keeps its kernel time in `kts` and takes the latest ts, as the signals' own drain does within its ring
// (signals/live.ts). Windows, logs and the engine's clock rely on it.
import type { MonoTypeOperatorFunction } from 'rxjs';
import type { KrsiEvent } from './events.ts';
import { operate } from '../lib/rx/operate.ts';

export function tsOrder(): MonoTypeOperatorFunction<KrsiEvent[]> {
  return operate<KrsiEvent[], KrsiEvent[]>('ts-order', (out) => {
    let lastTs = 0;
    return {
      next(batch) {
        for (const e of batch) {
          if (e.ts < lastTs) {
            e.kts = e.ts;
            e.ts = lastTs;
          } else lastTs = e.ts;
        }
        out.next(batch);
      },
    };
  });
}
