// The keyed-window store every correlation kind keeps its per-key state in. Bounded two ways:
// a state dies when event time passes its deadline, and at `cap` keys the oldest one is evicted.
// Map keeps insertion order. With fixed deadlines (sequence, absent) the front is always the earliest
// deadline, so expiry pops from the front only and nextDeadline is exact after a sweep. A store whose
// states extend their deadline in place (count, distinct: `extendable`) gives a live front a second
// chance during a sweep instead: it is rotated to the young end, a few per sweep, so dead keys behind
// a long-lived one are still reclaimed without re-inserting on every event.
import { setYoungest } from '../../lib/bounded-map.ts';

export interface Windowed {
  /** the state is live while now <= deadline (event time, ns) */
  deadline: number;
}

export interface StoreStats {
  keys: number;
  cap: number;
  evictions: number;
  expired: number;
}

export class KeyedWindow<S extends Windowed> {
  private m = new Map<string, S>();
  evictions = 0;
  expired = 0;
  /** when a sweep is due: a lower bound of the front's deadline (Infinity when empty); exact after a
   *  sweep for fixed-deadline stores */
  nextDeadline = Infinity;

  /** live front states rotated per sweep (extendable stores) */
  private static readonly ROTATE = 4;

  constructor(
    readonly cap: number,
    private extendable = false,
  ) {}

  get size(): number {
    return this.m.size;
  }

  /** the live state of `key` at `now`, or undefined (a dead one is dropped) */
  get(key: string, now: number): S | undefined {
    const s = this.m.get(key);
    if (s === undefined) return undefined;
    if (s.deadline < now) {
      this.m.delete(key);
      this.expired++;
      return undefined;
    }
    return s;
  }

  /** insert a new state (or replace one), as the youngest; sweeps dead states and enforces the cap */
  set(key: string, s: S, now: number): void {
    if (now > this.nextDeadline) this.sweep(now);
    if (setYoungest(this.m, key, s, this.cap)) this.evictions++;
    if (s.deadline < this.nextDeadline) this.nextDeadline = s.deadline;
  }

  delete(key: string): boolean {
    return this.m.delete(key);
  }

  /** drop every state whose deadline passed at `now`, oldest first, calling onExpire for each */
  sweep(now: number, onExpire?: (key: string, s: S) => void): void {
    let rotate = this.extendable ? KeyedWindow.ROTATE : 0;
    for (const [k, s] of this.m) {
      if (s.deadline >= now) {
        if (rotate-- > 0) {
          this.m.delete(k);
          this.m.set(k, s);
          continue;
        }
        this.nextDeadline = s.deadline;
        return;
      }
      this.m.delete(k);
      this.expired++;
      onExpire?.(k, s);
    }
    this.nextDeadline = Infinity;
  }

  entries(): IterableIterator<[string, S]> {
    return this.m.entries();
  }

  stats(): StoreStats {
    return { keys: this.m.size, cap: this.cap, evictions: this.evictions, expired: this.expired };
  }
}
