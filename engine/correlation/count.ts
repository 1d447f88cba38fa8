// count: at least `threshold` matching events per key within a sliding window of `within`.
// Re-arm rule: when it fires, the key's window is emptied and the key stays quiet until
// `within` after the firing event (matching events in that time are not counted); counting then
// starts afresh. So a sustained burst fires once per window, not on every further event.
// `until` clears the key; a pid-keyed count ends when that pid exits.
import type { CompiledRule, Facts } from '../rules/types.ts';
import { type Sink, keyText } from './index.ts';
import { RearmingCorrelator, correlationOf } from './keyed.ts';
import { formatDuration } from '../../lib/duration.ts';

interface CountState {
  deadline: number;
  /** ring of the last `threshold` matching events (ts order): their ts and seq only, so a key
   *  holds numbers, not events (grows to `threshold`, then wraps at head) */
  ts: number[];
  seq: number[];
  head: number;
  quietUntil: number;
}

export class CountCorrelator extends RearmingCorrelator<CountState> {
  constructor(rule: CompiledRule, sink: Sink, cap: number) {
    super(rule, sink, correlationOf(rule, 'count'), cap);
  }

  protected fresh(deadline: number): CountState {
    return { deadline, ts: [], seq: [], head: 0, quietUntil: -1 };
  }

  onEvent(f: Facts): void {
    if (this.untilClears(f)) return;
    if (!this.rule.match(f)) return;
    const k = this.key(f);
    if (k === undefined) return;
    const now = f.ts;
    const s = this.open(k, now);
    if (!s) return;
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
    this.rearm(s, now);
    this.sink.fire(this.rule, {
      ts: now,
      pid: f.pid,
      events: [f],
      seqs,
      subject: f,
      key: k,
      count: t,
      why: `${t} matching events by ${keyText(this.keyFields, k)} within ${formatDuration(this.within)} (threshold ${t}): seq ${seqs[0]} .. ${seqs[seqs.length - 1]}`,
    });
  }
}
