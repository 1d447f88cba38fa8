// evaluate: events (one at a time or in batches, for throughput) through an Engine, emitting its
// outputs in order. A Tick moves event time forward without an event (see heartbeat.ts).
import type { OperatorFunction } from 'rxjs';
import type { KrsiEvent } from '../../signals/events.ts';
import type { Output } from '../types.ts';
import type { Engine } from '../engine.ts';
import { operate } from '../../lib/rx/operate.ts';

/** "event time is now `tick`" (ns, the events' clock), from a heartbeat */
export interface Tick {
  tick: number;
}

export type EngineInput = KrsiEvent | KrsiEvent[] | Tick;

export function evaluate(engine: Engine): OperatorFunction<EngineInput, Output> {
  return operate<EngineInput, Output>('evaluate', (out) => {
    const emit = (x: Output) => out.next(x);
    return {
      next(v) {
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) engine.push(v[i], emit);
        } else if (v === null || typeof v !== 'object') {
          throw new TypeError(`evaluate: expected an event, a batch or a tick, got ${v === null ? 'null' : typeof v}`);
        } else if (typeof (v as Tick).tick === 'number' && (v as KrsiEvent).type === undefined) {
          engine.advance((v as Tick).tick, emit);
        } else {
          engine.push(v as KrsiEvent, emit);
        }
      },
      complete() {
        engine.finish(emit);
      },
    };
  });
}
