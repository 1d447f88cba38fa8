// sequence: ordered steps, each with its own match and optional own key, all within `within` of the
// first step. EQL semantics: one sequence in progress per key (the oldest wins; a step-0 match while
// one runs is ignored until it completes or expires); an event advances at most one step, checked
// from the last step down; `until` clears the key; a pid-keyed sequence ends when that pid exits, so a
// reused pid never completes a stale sequence.
import type { EventType, KrsiEvent } from '../../signals/events.ts';
import { EVENT_TYPES } from '../../signals/events.ts';
import type { CompiledRule, CompiledStep, Facts } from '../rules/types.ts';
import { type Sink, keyText, stepTypes, takes } from './index.ts';
import { KeyedCorrelator, correlationOf } from './keyed.ts';
import { formatDuration } from '../../lib/duration.ts';

interface SeqState {
  deadline: number;
  /** next step to match */
  stage: number;
  events: KrsiEvent[];
}

export class SequenceCorrelator extends KeyedCorrelator<SeqState> {
  readonly types: EventType[] | '*';
  private steps: CompiledStep[];
  /** event type -> indices of the steps taking it, last step first */
  private byType = new Map<string, number[]>();
  private stepIds: string[];

  constructor(rule: CompiledRule, sink: Sink, cap: number) {
    const c = correlationOf(rule, 'sequence');
    // fixed deadlines: a sequence's window runs from its first step
    super(rule, sink, c, cap, false);
    this.steps = c.steps;
    this.types = stepTypes([...c.steps, c.until]);
    this.stepIds = c.steps.map((s, i) => s.id || String(i));
    for (const t of EVENT_TYPES) this.stepsFor(t);
  }

  private stepsFor(type: string): number[] {
    let l = this.byType.get(type);
    if (!l) {
      l = [];
      for (let i = this.steps.length - 1; i >= 0; i--) if (takes(this.steps[i], type as EventType)) l.push(i);
      this.byType.set(type, l);
    }
    return l;
  }

  onEvent(f: Facts): void {
    if (this.untilClears(f)) return;
    const now = f.ts;
    const idx = this.stepsFor(f.type);
    for (let j = 0; j < idx.length; j++) {
      const i = idx[j];
      const st = this.steps[i];
      if (!st.match(f)) continue;
      const k = (st.key ?? this.key)(f);
      if (k === undefined) continue;
      const s = this.store.get(k, now);
      if (i === 0) {
        if (s) continue; // one in progress for this key: keep the oldest
        if (this.steps.length === 1) {
          this.complete(k, [f]);
          return;
        }
        this.store.set(k, { deadline: now + this.within, stage: 1, events: [f] }, now);
        return;
      }
      if (!s || s.stage !== i) continue;
      s.events.push(f);
      if (++s.stage === this.steps.length) {
        this.store.delete(k);
        this.complete(k, s.events);
      }
      return;
    }
  }

  private complete(key: string, events: KrsiEvent[]): void {
    const last = events[events.length - 1];
    this.sink.fire(this.rule, {
      ts: last.ts,
      pid: last.pid,
      events,
      steps: this.stepIds.slice(0, events.length),
      subject: last,
      key,
      why: `sequence ${this.stepIds.join(' -> ')} by ${keyText(this.keyFields, key)} within ${formatDuration(this.within)}`,
    });
  }
}
