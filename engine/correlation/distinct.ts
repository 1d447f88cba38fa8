// distinct: at least `threshold` distinct values of `field` per key within a sliding window.
// Same re-arm rule as count: on firing the key's values are cleared and the key is quiet until
// `within` after the firing event. `until` clears the key; a pid-keyed state ends when the pid exits.
import type { KrsiEvent } from '../../signals/events.ts';
import type { CompiledRule, Facts } from '../rules/types.ts';
import { type Sink, keyText } from './index.ts';
import { RearmingCorrelator, correlationOf } from './keyed.ts';
import { formatDuration } from '../../lib/duration.ts';

interface DistinctState {
  deadline: number;
  /** value -> the latest event carrying it; Map order = last-seen order */
  values: Map<string, KrsiEvent>;
  quietUntil: number;
}

export class DistinctCorrelator extends RearmingCorrelator<DistinctState> {
  private field: (f: Facts) => unknown;

  constructor(rule: CompiledRule, sink: Sink, cap: number) {
    const c = correlationOf(rule, 'distinct');
    super(rule, sink, c, cap);
    this.field = c.field;
  }

  protected fresh(deadline: number): DistinctState {
    return { deadline, values: new Map(), quietUntil: -1 };
  }

  onEvent(f: Facts): void {
    if (this.untilClears(f)) return;
    if (!this.rule.match(f)) return;
    const raw = this.field(f);
    if (raw === undefined || raw === null) return;
    const k = this.key(f);
    if (k === undefined) return;
    const v = typeof raw === 'string' ? raw : typeof raw === 'object' ? JSON.stringify(raw) : String(raw);
    const now = f.ts;
    const s = this.open(k, now);
    if (!s) return;
    const values = s.values;
    // slide: drop values last seen before the window
    for (const [val, e] of values) {
      if (now - e.ts <= this.within) break;
      values.delete(val);
    }
    values.delete(v);
    values.set(v, f);
    if (values.size < this.threshold) return;
    const events = [...values.values()];
    s.values = new Map();
    this.rearm(s, now);
    this.sink.fire(this.rule, {
      ts: now,
      pid: f.pid,
      events,
      subject: f,
      key: k,
      count: events.length,
      why: `${events.length} distinct values by ${keyText(this.keyFields, k)} within ${formatDuration(this.within)} (threshold ${this.threshold})`,
    });
  }
}
