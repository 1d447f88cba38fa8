// Correlation: what every kind (sequence, count, distinct, absent; one per file) shares.
// A correlator keeps per-key state for one rule in a KeyedWindow and calls Sink.fire when it fires.
// Time is event time only (the ts of the event being evaluated, or the engine's advance()).
import type { EventType, KrsiEvent } from '../../signals/events.ts';
import type { CompiledRule, CompiledStep, Facts } from '../rules/types.ts';
import type { StoreStats } from './keyed-window.ts';

export interface Firing {
  /** event time of the firing: the completing event's ts, or the deadline for an absence */
  ts: number;
  pid: number;
  /** contributing events, oldest first (count: only the last; see seqs) */
  events: KrsiEvent[];
  /** seq of every contributing event when `events` holds only some of them (count) */
  seqs?: number[];
  /** step id of each contributing event (sequence / absent) */
  steps?: string[];
  /** the event that names the verdict subject and fills the message by default */
  subject: KrsiEvent;
  /** the correlation key */
  key?: string;
  /** count / distinct: how many were seen */
  count?: number;
  /** one line on why, e.g. "3 distinct name by pid=42 within 10s" */
  why?: string;
}

export interface Sink {
  fire(rule: CompiledRule, f: Firing): void;
}

export interface Correlator {
  readonly rule: CompiledRule;
  /** event types this correlator wants (steps, until) */
  readonly types: EventType[] | '*';
  /** evaluate one event (already in the process table; facts.proc set) */
  onEvent(f: Facts): void;
  /** the event's pid exited (after the exit itself was evaluated): drop pid-keyed state */
  onExit(f: Facts): void;
  /** earliest pending deadline that fires when passed (absent), Infinity otherwise */
  nextDeadline(): number;
  /** event time moved to `now`: fire what passed its deadline */
  advance(now: number): void;
  stats(): StoreStats;
}

/** the union of step types (or a rule's and its `until`'s), '*' if any takes any type */
export function stepTypes(steps: (Pick<CompiledStep, 'types'> | undefined)[]): EventType[] | '*' {
  const all = new Set<EventType>();
  for (const s of steps) {
    if (!s) continue;
    if (s.types === '*') return '*';
    for (const t of s.types) all.add(t);
  }
  return [...all];
}

export function takes(s: CompiledStep, type: EventType): boolean {
  return s.types === '*' || s.types.includes(type);
}

/** is this correlation keyed by the pid alone (its state ends when the pid exits) */
export function pidKeyed(keyFields: string[]): boolean {
  return keyFields.length === 1 && keyFields[0] === 'pid';
}

/** "pid=42", "uid,exe.ino=0,1234": the key as people read it (the loader joins parts with \x1f) */
export function keyText(fields: string[], key: string | undefined): string {
  if (key === undefined) return '?';
  if (fields.length === 0) return 'all';
  return `${fields.join(',')}=${key.split('\x1f').join(',')}`;
}
