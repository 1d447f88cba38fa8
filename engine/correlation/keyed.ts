// What the keyed kinds share. correlationOf: every kind's check that a rule is of its kind.
// KeyedCorrelator (sequence, count, distinct): the per-key store, `until` clearing a key, pid-keyed
// state ending when the pid exits, no deadlines of its own. RearmingCorrelator (count, distinct): the
// threshold and the re-arm rule: on firing the key starts afresh and stays quiet until `within` after
// the firing event. Absent keeps its own shape (no until, no exit, deadlines that fire).
import type { EventType } from '../../signals/events.ts';
import type { CompiledCorrelation, CompiledRule, CompiledStep, Facts, KeyFn } from '../rules/types.ts';
import { type Correlator, type Sink, pidKeyed, stepTypes } from './index.ts';
import { KeyedWindow, type StoreStats, type Windowed } from './keyed-window.ts';

type Kind = CompiledCorrelation['kind'];
export type CorrelationOf<K extends Kind> = Extract<CompiledCorrelation, { kind: K }>;

/** the rule's correlation, which must be of `kind` */
export function correlationOf<K extends Kind>(rule: CompiledRule, kind: K): CorrelationOf<K> {
  const c = rule.correlation;
  if (!c || c.kind !== kind) throw new Error(`rule ${rule.id}: not ${kind === 'absent' ? 'an' : 'a'} ${kind}`);
  return c as CorrelationOf<K>;
}

type Keyed = CorrelationOf<'sequence' | 'count' | 'distinct'>;

export abstract class KeyedCorrelator<S extends Windowed> implements Correlator {
  abstract readonly types: EventType[] | '*';
  protected store: KeyedWindow<S>;
  protected key: KeyFn;
  protected keyFields: string[];
  protected within: number;
  private until?: CompiledStep;
  private untilAll: boolean;
  private untilTypes: Set<string>;
  private pidKey: boolean;

  constructor(
    readonly rule: CompiledRule,
    protected sink: Sink,
    c: Keyed,
    cap: number,
    extendable: boolean,
  ) {
    this.key = c.key;
    this.keyFields = c.keyFields;
    this.within = c.within;
    this.until = c.until;
    this.untilAll = c.until?.types === '*';
    this.untilTypes = new Set(c.until && c.until.types !== '*' ? c.until.types : []);
    this.pidKey = pidKeyed(c.keyFields);
    this.store = new KeyedWindow(cap, extendable);
  }

  abstract onEvent(f: Facts): void;

  /** `f` is an `until` event: its key is cleared and the caller evaluates it no further */
  protected untilClears(f: Facts): boolean {
    const u = this.until;
    if (u === undefined || !(this.untilAll || this.untilTypes.has(f.type)) || !u.match(f)) return false;
    const k = (u.key ?? this.key)(f);
    if (k !== undefined) this.store.delete(k);
    return true;
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

  stats(): StoreStats {
    return this.store.stats();
  }
}

export interface Rearming extends Windowed {
  /** matching events up to this ts are not counted (the key fired) */
  quietUntil: number;
}

export abstract class RearmingCorrelator<S extends Rearming> extends KeyedCorrelator<S> {
  readonly types: EventType[] | '*';
  protected threshold: number;

  constructor(rule: CompiledRule, sink: Sink, c: CorrelationOf<'count' | 'distinct'>, cap: number) {
    // deadlines extend in place with every counted event
    super(rule, sink, c, cap, true);
    this.threshold = Math.max(1, c.threshold);
    this.types = stepTypes([rule, c.until]);
  }

  /** a new, empty state for a key whose window ends at `deadline` */
  protected abstract fresh(deadline: number): S;

  /** the state key `k` counts an event of `now` in, its window extended; undefined while the key is quiet */
  protected open(k: string, now: number): S | undefined {
    let s = this.store.get(k, now);
    if (!s) {
      s = this.fresh(now + this.within);
      this.store.set(k, s, now);
    } else {
      if (now <= s.quietUntil) return undefined;
      s.deadline = now + this.within;
    }
    return s;
  }

  /** the key fired at `now` (the caller has emptied its state): quiet for one window */
  protected rearm(s: S, now: number): void {
    s.quietUntil = now + this.within;
  }
}
