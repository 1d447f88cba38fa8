// Options shared by the event log readers (JSON Lines and lmdb).
import type { EventError } from '../../signals/event-contract.ts';
import { UNIT_NS } from '../../lib/duration.ts';

export interface ReadOptions {
  /** go on after a bad line (it is reported to onBad and skipped); default: throw the located error */
  skipBad?: boolean;
  /** first event time to read (inclusive): integer ns, or a duration ("30s", "1m") after the log's first event */
  since?: number | string;
  /** event time to stop at (exclusive): integer ns, or a duration after the log's first event */
  until?: number | string;
  /** events per yielded batch (approximate for JSON Lines), default 4096 */
  batch?: number;
  onBad?(e: EventError): void;
  /** JSON Lines: the first event must not be before this ts (appending to a log whose last event has it) */
  after?: { ts: number; what: string };
  /** leave `seq` absent when the log has none (export uses this to give back the events as stored) */
  noSeq?: boolean;
  /** JSON Lines: lines 1..skipLines are not read (an import resumed after them) */
  skipLines?: number;
  /** JSON Lines: filled with the line number of each event of the batch just yielded (import uses it
   *  to locate events it cannot store, and to record how far it got) */
  lineOf?: number[];
  /** progress in bytes (JSON Lines) or events (lmdb); total 0 when unknown (stdin) */
  onProgress?(done: number, total: number): void;
}

/** a --since/--until value: integer ns (absolute), or a duration with a unit (relative to the first event) */
export function parseBound(v: number | string, name: string): { abs?: number; rel?: number } {
  if (typeof v === 'number' || /^\d+$/.test(v)) {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new RangeError(`${name}: ${v} is not an integer below 2^53`);
    return { abs: n };
  }
  const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)$/.exec(v.trim());
  if (!m) throw new RangeError(`${name}: expected integer nanoseconds or a duration such as 500ms, 30s, 2m, 1h; got ${JSON.stringify(v)}`);
  return { rel: Math.round(Number(m[1]) * UNIT_NS[m[2]]) };
}

/** since/until resolved against the first event of the log (for relative bounds) */
export class TimeBounds {
  since = 0;
  until = Infinity;
  resolved: boolean;
  private readonly s: { abs?: number; rel?: number };
  private readonly u: { abs?: number; rel?: number };
  constructor(o: ReadOptions) {
    this.s = o.since === undefined ? { abs: 0 } : parseBound(o.since, '--since');
    this.u = o.until === undefined ? { abs: Infinity } : parseBound(o.until, '--until');
    this.resolved = this.s.rel === undefined && this.u.rel === undefined;
    if (this.resolved) this.resolve(0);
  }
  /** fixes the bounds given the first event's ts */
  resolve(firstTs: number): void {
    this.since = this.s.abs ?? firstTs + this.s.rel!;
    this.until = this.u.abs ?? firstTs + this.u.rel!;
    this.resolved = true;
  }
}
