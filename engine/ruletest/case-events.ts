// A case's inline events: process templates applied, repeats expanded, ts durations converted, each
// checked against the event contract.
import type { KrsiEvent } from '../../signals/events.ts';
import { EventError, validateEvent } from '../../signals/event-contract.ts';
import { parseDuration } from '../../lib/duration.ts';
import { MAX_CASE_EVENTS } from '../rules/limits.ts';
import { describe, esc, type Obj, type Reader } from './reader.ts';

/** named process templates: their fields are the defaults of events that say "process": name */
export function readProcesses(r: Reader, v: unknown): Map<string, Obj> {
  const out = new Map<string, Obj>();
  if (v === undefined) return out;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    r.fail('/processes', `must be an object of name -> event fields, got ${describe(v)}`);
    return out;
  }
  for (const [name, t] of Object.entries(v)) {
    if (typeof t !== 'object' || t === null || Array.isArray(t)) r.fail(`/processes/${esc(name)}`, `must be an object of event fields, got ${describe(t)}`);
    else out.set(name, t as Obj);
  }
  return out;
}

/** inline events: repeats expanded, templates applied, ts durations converted, validated against the
 *  event contract, ts non-decreasing; seq defaults to the event's position (1-based, after expansion) */
export function readCaseEvents(r: Reader, v: unknown, pointer: string, processes: Map<string, Obj>): KrsiEvent[] | undefined {
  if (!Array.isArray(v)) return r.fail(pointer, `must be an array of events, got ${describe(v)}`);
  const out: KrsiEvent[] = [];
  let lastTs = -1;
  for (const [i, raw] of v.entries()) {
    const p = `${pointer}/${i}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      r.fail(p, `must be an event object, got ${describe(raw)}`);
      continue;
    }
    const { repeat, ...one } = raw as Obj;
    // the event that would take the case past MAX_CASE_EVENTS is reported, and the rest are not read
    const n = repeat === undefined ? 1 : (repeat as Obj)?.count;
    if (typeof n === 'number' && n > MAX_CASE_EVENTS - out.length) {
      r.fail(repeat === undefined ? p : `${p}/repeat/count`, `a case may have at most ${MAX_CASE_EVENTS} events (repeats included): this one makes ${out.length + n}`);
      break;
    }
    const copies = expandRepeat(r, repeat, `${p}/repeat`, one);
    for (const c of copies ?? []) {
      const ev = readEvent(r, c, p, processes, out.length + 1, lastTs);
      if (!ev) break;
      lastTs = ev.ts;
      out.push(ev);
    }
  }
  return out;
}

/** "repeat": {"count": N, "every": "10ms", "cycle": {"prot": [3, 7, 5]}} makes N copies of the event,
 *  the k-th at ts + k*every, with each cycled field taking its values in turn */
function expandRepeat(r: Reader, v: unknown, pointer: string, ev: Obj): Obj[] | undefined {
  if (v === undefined) return [ev];
  const o = r.object(v, pointer, ['count', 'every', 'cycle']);
  if (!o) return undefined;
  const count = r.uint(o, 'count', pointer);
  if (count === undefined || count < 1) return r.fail(`${pointer}/count`, 'must be an integer >= 1');
  let every = 0;
  if (o.every !== undefined) {
    try {
      every = parseDuration(o.every as string | number);
    } catch (e) {
      return r.fail(`${pointer}/every`, (e as Error).message);
    }
  }
  const cycle = o.cycle === undefined ? {} : r.object(o.cycle, `${pointer}/cycle`, Object.keys(o.cycle as Obj));
  if (!cycle) return undefined;
  for (const [k, vals] of Object.entries(cycle)) {
    if (!Array.isArray(vals) || vals.length === 0) return r.fail(`${pointer}/cycle/${esc(k)}`, 'must be a non-empty array of values');
  }
  let ts0: number;
  try {
    ts0 = typeof ev.ts === 'string' ? parseDuration(ev.ts) : (ev.ts as number);
  } catch (e) {
    return r.fail(pointer.replace(/\/repeat$/, '/ts'), `${(e as Error).message} (ts is integer ns or a duration such as "1500ms")`);
  }
  const out: Obj[] = [];
  for (let k = 0; k < count; k++) {
    const c: Obj = { ...ev, ts: typeof ts0 === 'number' ? ts0 + k * every : ts0 };
    for (const [f, vals] of Object.entries(cycle)) c[f] = (vals as unknown[])[k % (vals as unknown[]).length];
    out.push(c);
  }
  return out;
}

function readEvent(r: Reader, raw: Obj, p: string, processes: Map<string, Obj>, position: number, lastTs: number): KrsiEvent | undefined {
  let ev: Obj = { ...raw };
  if (ev.process !== undefined) {
    const t = typeof ev.process === 'string' ? processes.get(ev.process) : undefined;
    if (!t) {
      const known = [...processes.keys()];
      return r.fail(`${p}/process`, `no process template named ${describe(ev.process)}${known.length ? ` (defined: ${known.join(', ')})` : ' (define them in "processes")'}`);
    }
    const { process: _, ...own } = ev;
    ev = { ...structuredClone(t), ...own };
  }
  if (typeof ev.ts === 'string') {
    try {
      ev.ts = parseDuration(ev.ts);
    } catch (e) {
      return r.fail(`${p}/ts`, `${(e as Error).message} (ts is integer ns or a duration such as "1500ms")`);
    }
  }
  if (ev.seq === undefined) ev.seq = position;
  const at = r.where(p);
  try {
    validateEvent(ev, { file: at.file, line: at.line });
  } catch (e) {
    if (!(e instanceof EventError)) throw e;
    const fp = e.field ? `${p}/${e.field.split('.').map(esc).join('/')}` : p;
    return r.fail(fp, `bad event: ${e.field ? `field ${e.field}: ` : ''}${e.reason}`);
  }
  if ((ev.ts as number) < lastTs) return r.fail(`${p}/ts`, `ts ${ev.ts} is before the previous event's ${lastTs}: events must be in time order`);
  return ev as KrsiEvent;
}
