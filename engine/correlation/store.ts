// The keyed-window store every correlation kind keeps its per-key state in. Bounded two ways:
// a state dies when event time passes its deadline, and at `cap` keys the oldest one is evicted.
// Map keeps insertion order; callers re-insert (touch) a state whose deadline moves later, so the
// front is always the earliest deadline and expiry pops from the front only.

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
  /** a lower bound of the front's deadline (Infinity when empty); sweep() makes it exact */
  nextDeadline = Infinity;

  constructor(readonly cap: number) {}

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
    if (this.m.size > 0) this.sweep(now);
    if (this.m.has(key)) this.m.delete(key);
    else if (this.m.size >= this.cap) {
      const oldest = this.m.keys().next().value as string;
      this.m.delete(oldest);
      this.evictions++;
    }
    this.m.set(key, s);
    if (s.deadline < this.nextDeadline) this.nextDeadline = s.deadline;
  }

  /** the state's deadline moved later: move it to the young end */
  touch(key: string, s: S): void {
    this.m.delete(key);
    this.m.set(key, s);
  }

  delete(key: string): boolean {
    return this.m.delete(key);
  }

  /** drop every state whose deadline passed at `now`, oldest first, calling onExpire for each */
  sweep(now: number, onExpire?: (key: string, s: S) => void): void {
    for (const [k, s] of this.m) {
      if (s.deadline >= now) {
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

  clear(): void {
    this.m.clear();
    this.nextDeadline = Infinity;
  }

  stats(): StoreStats {
    return { keys: this.m.size, cap: this.cap, evictions: this.evictions, expired: this.expired };
  }
}
