// distinct: at least `threshold` distinct values of `field` per key within a sliding window.
// Same re-arm rule as count: on firing the key's values are cleared and the key is quiet until
// `within` after the firing event. `until` clears the key; a pid-keyed state ends when the pid exits.
import type { EventType, KrsiEvent } from '../../signals/events.ts';
import type { CompiledRule, CompiledStep, Facts, KeyFn } from '../rules/types.ts';
import { type Correlator, type Sink, fmtNs, keyText, pidKeyed } from './index.ts';
import { KeyedWindow } from './store.ts';

interface DistinctState {
  deadline: number;
  /** value -> the latest event carrying it; Map order = last-seen order */
  values: Map<string, KrsiEvent>;
  quietUntil: number;
}

export class DistinctCorrelator implements Correlator {
  readonly types: EventType[] | '*';
  private store: KeyedWindow<DistinctState>;
  private key: KeyFn;
  private within: number;
  private threshold: number;
  private field: (f: Facts) => unknown;
  private until?: CompiledStep;
  private pidKey: boolean;
  private keyFields: string[];
  private untilAll: boolean;
  private untilTypes: Set<string>;

  constructor(
    readonly rule: CompiledRule,
    private sink: Sink,
    cap: number,
  ) {
    const c = rule.correlation;
    if (!c || c.kind !== 'distinct') throw new Error(`rule ${rule.id}: not a distinct`);
    this.key = c.key;
    this.within = c.within;
    this.threshold = Math.max(1, c.threshold);
    this.field = c.field;
    this.until = c.until;
    this.pidKey = pidKeyed(c.keyFields);
    this.keyFields = c.keyFields;
    this.untilAll = c.until?.types === '*';
    this.untilTypes = new Set(c.until && c.until.types !== '*' ? c.until.types : []);
    this.store = new KeyedWindow(cap, true);
    this.types = rule.types === '*' || c.until?.types === '*' ? '*' : [...new Set([...rule.types, ...(c.until?.types ?? [])])];
  }

  onEvent(f: Facts): void {
    const now = f.ts;
    const u = this.until;
    if (u !== undefined && (this.untilAll || this.untilTypes.has(f.type)) && u.match(f)) {
      const k = (u.key ?? this.key)(f);
      if (k !== undefined) this.store.delete(k);
      return;
    }
    if (!this.rule.match(f)) return;
    const raw = this.field(f);
    if (raw === undefined || raw === null) return;
    const k = this.key(f);
    if (k === undefined) return;
    const v = typeof raw === 'string' ? raw : typeof raw === 'object' ? JSON.stringify(raw) : String(raw);
    let s = this.store.get(k, now);
    if (!s) {
      s = { deadline: now + this.within, values: new Map(), quietUntil: -1 };
      this.store.set(k, s, now);
    } else {
      if (now <= s.quietUntil) return;
      s.deadline = now + this.within;
    }
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
    s.quietUntil = now + this.within;
    this.sink.fire(this.rule, {
      ts: now,
      pid: f.pid,
      events,
      subject: f,
      key: k,
      count: events.length,
      why: `${events.length} distinct values by ${keyText(this.keyFields, k)} within ${fmtNs(this.within)} (threshold ${this.threshold})`,
    });
  }

  onExit(f: Facts): void {
    if (!this.pidKey || this.store.size === 0) return;
    const k = this.key(f);
    if (k !== undefined) this.store.delete(k);
  }

  nextDeadline(): number {
    return Infinity;
  }

  advance(): void {}

  stats() {
    return this.store.stats();
  }
}
