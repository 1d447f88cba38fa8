// Test helpers for the engine: event builders and hand-built compiled rules (plain objects with
// predicate closures), independent of the rule loader.
import type { EventType, KrsiEvent } from '../../signals/events.ts';
import type { ActionJson, CompiledCorrelation, CompiledRule, CompiledRuleSet, CompiledStep, Facts, KernelJson, KeyFn, Predicate } from '../../engine/rules/types.ts';
import { EVENT_TYPES } from '../../signals/events.ts';

let seq = 0;
export function resetSeq(): void {
  seq = 0;
}

/** an event with sane defaults; seq assigned in creation order */
export function ev(type: EventType, ts: number, pid: number, extra: Record<string, unknown> = {}): KrsiEvent {
  return {
    ts,
    type,
    pid,
    ppid: 1,
    uid: 0,
    comm: 'sh',
    exe: { path: '/bin/sh', dev: 2049, ino: 100 },
    seq: seq++,
    ...extra,
  } as KrsiEvent;
}

export const S = 1_000_000_000;

/** read a dotted path ("exe.ino") from the facts */
export function get(f: unknown, path: string): unknown {
  let o: any = f;
  for (const k of path.split('.')) {
    if (o == null) return undefined;
    o = o[k];
  }
  return o;
}

export function keyOf(fields: string[]): KeyFn {
  return (f: Facts) => {
    let k = '';
    for (let i = 0; i < fields.length; i++) {
      const v = get(f, fields[i]);
      if (v === undefined || v === null) return undefined;
      k += i ? '|' + String(v) : String(v);
    }
    return k;
  };
}

export function step(id: string, types: EventType[] | '*', match: Predicate, by?: string[]): CompiledStep {
  return { id, types, match, key: by ? keyOf(by) : undefined };
}

export interface RuleSpec {
  id: string;
  types?: EventType[] | '*';
  match?: Predicate;
  correlation?: CompiledCorrelation;
  actions?: ActionJson[];
  ttls?: number[];
  mode?: 'monitor' | 'enforce';
  kernel?: KernelJson;
  description?: string;
  matchJson?: unknown;
}

export function rule(s: RuleSpec): CompiledRule {
  return {
    id: s.id,
    description: s.description ?? `rule ${s.id}`,
    tags: ['T0000'],
    severity: 'high',
    mode: s.mode ?? 'monitor',
    types: s.types ?? '*',
    match: s.match ?? (() => true),
    correlation: s.correlation,
    actions: s.actions ?? [{ type: 'alert' }],
    ttls: s.ttls ?? (s.actions ?? []).map(() => 0),
    kernel: s.kernel,
    source: { id: s.id, description: '', tags: [], severity: 'high', match: (s.matchJson ?? { all: [] }) as any, actions: s.actions ?? [] },
    loc: { file: 'inline.json', line: 1, column: 1, pointer: '/rules/0' },
  };
}

function typesOf(r: CompiledRule): EventType[] | '*' {
  const c = r.correlation;
  if (!c || c.kind === 'count' || c.kind === 'distinct') return r.types;
  const steps = c.kind === 'sequence' ? [...c.steps, ...(c.until ? [c.until] : [])] : [c.first, c.then];
  const all = new Set<EventType>();
  for (const st of steps) {
    if (st.types === '*') return '*';
    for (const t of st.types) all.add(t);
  }
  return [...all];
}

export function ruleSet(rules: CompiledRule[], lists: Record<string, (string | number)[]> = {}): CompiledRuleSet {
  const byType = new Map<EventType, CompiledRule[]>();
  for (const t of EVENT_TYPES) byType.set(t, []);
  for (const r of rules) {
    const ts = typesOf(r);
    for (const t of ts === '*' ? EVENT_TYPES : ts) byType.get(t)!.push(r);
  }
  const l: Record<string, Set<string | number>> = {};
  for (const [k, v] of Object.entries(lists)) l[k] = new Set(v);
  return { rules, lists: l, byType };
}

export const isType = (t: EventType): Predicate => (f) => f.type === t;
