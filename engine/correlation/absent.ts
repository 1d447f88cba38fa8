// absent, two forms.
// 1. A not followed by B: a `first` event arms its key (the first arming wins while pending); a `then`
//    event with the same key disarms it; when event time passes A.ts + within (strictly: a B at
//    exactly the deadline still counts) the rule fires, at the deadline, naming A. A key disarmed
//    at the end of input is not fired (the future is unknown).
// 2. `lacks`: A then B where B's array field lacks the value A named (e.g. a module_list snapshot
//    lacking a loaded module's name). Each A is pending per (key, value) for its window; every B with
//    the same key checks them: fires with [A, B] for each whose value its field lacks (and drops it).
//    A B that lists the value settles nothing: a module seen listed can still hide later (a snapshot
//    right after the load may even be read before the module's init ran and unlinked itself). A with
//    no lacking B in the window expires silently. Pending A are counted per value: a second A with the
//    same value (a module of the same name loaded again: a hidden one no longer blocks the name)
//    refreshes the window and adds one.
// `until`: an event with the key that matches it ends the key's pending A (lacks form: takes one off
// the count of that key's pending value it also has, read with the same `lacks.from` path, e.g. a
// module_unload naming the loaded module: a module that was unloaded did not hide; one unload does not
// excuse another module of that name).
// Absent state is not cleared on exit: a process that exits did not do B.
import type { EventType, KrsiEvent } from '../../signals/events.ts';
import type { CompiledRule, CompiledStep, Facts, KeyFn } from '../rules/types.ts';
import { type Correlator, type Sink, stepTypes, takes } from './index.ts';
import { correlationOf } from './keyed.ts';
import { KeyedWindow } from './keyed-window.ts';
import { formatDuration } from '../../lib/duration.ts';

interface Pending {
  deadline: number;
  ev: KrsiEvent;
  key: string;
  value?: unknown;
  /** lacks form: A events with this value not yet ended by an until */
  n: number;
}

const NO_KEY: KeyFn = () => '';

export class AbsentCorrelator implements Correlator {
  readonly types: EventType[] | '*';
  private store: KeyedWindow<Pending>;
  private firstKey: KeyFn;
  private thenKey: KeyFn;
  private first: CompiledStep;
  private then: CompiledStep;
  private within: number;
  private lacks?: CompiledStep['lacks'];
  private until?: CompiledStep;
  private ids: [string, string];
  private expire = (_k: string, p: Pending): void => this.fireTimeout(p);

  constructor(
    readonly rule: CompiledRule,
    private sink: Sink,
    cap: number,
  ) {
    const c = correlationOf(rule, 'absent');
    this.first = c.first;
    this.then = c.then;
    this.firstKey = c.first.key ?? c.key ?? NO_KEY;
    this.thenKey = c.then.key ?? c.key ?? NO_KEY;
    this.within = c.within;
    this.lacks = c.then.lacks;
    this.until = c.until;
    this.store = new KeyedWindow(cap);
    this.types = stepTypes([c.first, c.then, c.until]);
    this.ids = [c.first.id || 'first', c.then.id || 'then'];
  }

  onEvent(f: Facts): void {
    const now = f.ts;
    const u = this.until;
    if (u !== undefined && takes(u, f.type) && u.match(f)) {
      // the until event is evaluated no further (as for the keyed kinds)
      const k = (u.key ?? this.firstKey)(f);
      if (k === undefined) return;
      if (!this.lacks) this.store.delete(k);
      else {
        const value = this.lacks.from(f);
        if (value === undefined || value === null) return;
        const sk = k + '\u0000' + String(value);
        const p = this.store.get(sk, now);
        if (p !== undefined && --p.n <= 0) this.store.delete(sk);
      }
      return;
    }
    if (takes(this.then, f.type) && this.then.match(f)) {
      const k = this.thenKey(f);
      if (k !== undefined) {
        if (this.lacks) this.resolve(k, f);
        else this.store.delete(k);
      }
    }
    if (takes(this.first, f.type) && this.first.match(f)) {
      const k = this.firstKey(f);
      if (k === undefined) return;
      if (this.lacks) {
        const value = this.lacks.from(f);
        if (value === undefined || value === null) return;
        // a repeated A for the same value: one more pending, the latest A named, a fresh window
        const sk = k + '\u0000' + String(value);
        const n = (this.store.get(sk, now)?.n ?? 0) + 1;
        this.store.set(sk, { deadline: now + this.within, ev: f, key: k, value, n }, now);
      } else if (!this.store.get(k, now)) {
        this.store.set(k, { deadline: now + this.within, ev: f, key: k, n: 1 }, now);
      }
    }
  }

  /** lacks form: a B event with key k fires for every pending A of that key whose value it lacks */
  private resolve(k: string, b: Facts): void {
    const list = this.lacks!.field(b);
    if (!Array.isArray(list)) return;
    const now = b.ts;
    const done: string[] = [];
    const fired: Pending[] = [];
    for (const [sk, p] of this.store.entries()) {
      if (p.key !== k) continue;
      if (p.ev.ts > now) continue; // A came after B was taken (delivered first): B says nothing of it
      if (p.deadline < now) done.push(sk); // expired: silently
      else if (!list.includes(p.value)) {
        done.push(sk);
        fired.push(p);
      }
    }
    for (const sk of done) this.store.delete(sk);
    for (const p of fired) {
      this.sink.fire(this.rule, {
        ts: now,
        pid: p.ev.pid,
        events: [p.ev, b],
        steps: this.ids,
        subject: p.ev,
        key: k || undefined,
        why: `${this.ids[1]} lacks ${JSON.stringify(p.value)} named by ${this.ids[0]} within ${formatDuration(this.within)}`,
      });
    }
  }

  private fireTimeout(p: Pending): void {
    if (this.lacks) return; // lacks form: no B in the window proves nothing
    this.sink.fire(this.rule, {
      ts: p.deadline,
      pid: p.ev.pid,
      events: [p.ev],
      steps: [this.ids[0]],
      subject: p.ev,
      key: p.key || undefined,
      why: `${this.ids[0]} not followed by ${this.ids[1]}${p.key ? ` for ${p.key}` : ''} within ${formatDuration(this.within)}`,
    });
  }

  onExit(): void {}

  nextDeadline(): number {
    return this.store.nextDeadline;
  }

  /** event time is now `now`: every pending A whose deadline is before it fires (oldest first) */
  advance(now: number): void {
    this.store.sweep(now, this.expire);
  }

  stats() {
    return this.store.stats();
  }
}
