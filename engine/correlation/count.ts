// count: at least `threshold` matching events per key within a sliding window of `within`.
// Re-arm rule: when it fires, the key's window is emptied and the key stays quiet until
// `within` after the firing event (matching events in that time are not counted); counting then
// starts afresh. So a sustained burst fires once per window, not on every further event.
// `until` clears the key; a pid-keyed count ends when that pid exits.
import type { EventType } from '../../signals/events.ts';
import type { CompiledRule, CompiledStep, Facts, KeyFn } from '../rules/types.ts';
import { type Correlator, type Sink, fmtNs, keyText, pidKeyed } from './index.ts';
import { KeyedWindow } from './store.ts';

interface CountState {
  deadline: number;
  /** ring of the last `threshold` matching events (ts order): their ts and seq only, so a key
   *  holds numbers, not events (grows to `threshold`, then wraps at head) */
  ts: number[];
  seq: number[];
  head: number;
  quietUntil: number;
}

export class CountCorrelator implements Correlator {
  readonly types: EventType[] | '*';
  private store: KeyedWindow<CountState>;
  private key: KeyFn;
  private within: number;
  private threshold: number;
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
    if (!c || c.kind !== 'count') throw new Error(`rule ${rule.id}: not a count`);
    this.key = c.key;
    this.within = c.within;
    this.threshold = Math.max(1, c.threshold);
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
    const k = this.key(f);
    if (k === undefined) return;
    let s = this.store.get(k, now);
    if (!s) {
      s = { deadline: now + this.within, ts: [], seq: [], head: 0, quietUntil: -1 };
      this.store.set(k, s, now);
    } else {
      if (now <= s.quietUntil) return;
      s.deadline = now + this.within;
    }
    const t = this.threshold;
    const seq = f.seq ?? -1;
    if (s.ts.length < t) {
      s.ts.push(now);
      s.seq.push(seq);
      if (s.ts.length < t) return;
    } else {
      s.ts[s.head] = now;
      s.seq[s.head] = seq;
      s.head = s.head + 1 === t ? 0 : s.head + 1;
    }
    // full ring: the oldest of the last `threshold` events is at head
    if (now - s.ts[s.head] > this.within) return;
    const seqs = s.seq.slice(s.head).concat(s.seq.slice(0, s.head));
    s.ts = [];
    s.seq = [];
    s.head = 0;
    s.quietUntil = now + this.within;
    this.sink.fire(this.rule, {
      ts: now,
      pid: f.pid,
      events: [f],
      seqs,
      subject: f,
      key: k,
      count: t,
      why: `${t} matching events by ${keyText(this.keyFields, k)} within ${fmtNs(this.within)} (threshold ${t}): seq ${seqs[0]} .. ${seqs[seqs.length - 1]}`,
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
