// The engine as an RxJS operator: events (or batches of events) in, alerts / verdicts / denials out.
//   events$.pipe(krsiEngine({ rules }))                         replay
//   events$.pipe(krsiEngine({ rules, simulate: false, heartbeat: { every: 500, clock } }))   live
// The Engine underneath is synchronous and uses event time only; the heartbeat (live) only moves
// event time forward between events so absences can fire.
import { pipe, type OperatorFunction } from 'rxjs';
import type { KrsiEvent } from '../signals/events.ts';
import type { Output } from './types.ts';
import { Engine, type EngineOptions } from './engine.ts';
import { evaluate, type EngineInput } from './rx/evaluate.ts';
import { heartbeat, type HeartbeatOptions } from './rx/heartbeat.ts';

export interface PipelineOptions extends EngineOptions {
  /** use this engine (to read its stats and model afterwards) instead of making one */
  engine?: Engine;
  /** live: move event time forward between events */
  heartbeat?: HeartbeatOptions;
  /** emit a SummaryOut last, on completion (seconds: wall time since krsiEngine() was called) */
  summary?: boolean | { bad_lines?: () => number };
}

export function krsiEngine(o: PipelineOptions): OperatorFunction<KrsiEvent | KrsiEvent[], Output> {
  const engine = o.engine ?? new Engine(o);
  const started = performance.now();
  const s = o.summary;
  const last = s
    ? (e: Engine) => e.summary({ seconds: (performance.now() - started) / 1000, bad_lines: typeof s === 'object' ? s.bad_lines?.() : 0 })
    : undefined;
  const ev = evaluate(engine, { last });
  if (!o.heartbeat) return ev as OperatorFunction<KrsiEvent | KrsiEvent[], Output>;
  return pipe(heartbeat<KrsiEvent | KrsiEvent[]>(o.heartbeat), ev as OperatorFunction<EngineInput, Output>);
}

export { Engine, type EngineOptions };
