// The engine's part of krsi's one RxJS pipeline (replay and live differ only in source and sinks):
//   source → [heartbeat, live] → evaluate → summarize → sinks
//   fromLog(path).pipe(krsiEngine({ rules, summary: true }))                          replay
//   events$.pipe(krsiEngine({ rules, enforcement, heartbeat: { every: 500, clock } }))   live
// The Engine inside `evaluate` is synchronous and uses event time only; the heartbeat (live) only moves
// event time forward between events so absences can fire.
import { pipe, type OperatorFunction } from 'rxjs';
import type { KrsiEvent } from '../signals/events.ts';
import type { Output } from './types.ts';
import { Engine, type EngineOptions } from './engine.ts';
import { evaluate, type EngineInput } from './rx/evaluate.ts';
import { heartbeat, type HeartbeatOptions } from './rx/heartbeat.ts';
import { summarize } from './rx/summarize.ts';

export type PipelineOptions = PipelineStages & (({ engine?: undefined } & EngineOptions) | { /** this engine (to read its stats afterwards) instead of a new one */ engine: Engine });

interface PipelineStages {
  /** live: move event time forward between events */
  heartbeat?: HeartbeatOptions;
  /** emit a SummaryOut last, on completion; `badLines` and `extra` are read then */
  summary?: boolean | { badLines?: () => number; extra?: () => object };
}

export function krsiEngine(o: PipelineOptions): OperatorFunction<KrsiEvent | KrsiEvent[], Output> {
  const engine = o.engine ?? new Engine(o as EngineOptions);
  const ev = evaluate(engine) as OperatorFunction<KrsiEvent | KrsiEvent[] | EngineInput, Output>;
  const beat = o.heartbeat ? heartbeat<KrsiEvent | KrsiEvent[]>(o.heartbeat) : undefined;
  const s = o.summary;
  const sum = s ? summarize({ rules: engine.opts.rules, events: () => engine.stats().events, ...(typeof s === 'object' ? s : {}) }) : undefined;
  if (beat && sum) return pipe(beat, ev, sum);
  if (beat) return pipe(beat, ev);
  if (sum) return pipe(ev, sum);
  return ev;
}

export { Engine, type EngineOptions };
