// Building alerts and verdicts when a rule fires: message templates with {field} placeholders and
// explain lines listing the contributing events and the conditions they met.
//
// Templates: "{exe.path}" reads the subject event (the event that completed the rule; for absent
// rules the `first` event); "{<step id>.field}" reads that step's event; "{proc.env.LD_PRELOAD}" the
// process facts when the subject event is the one being evaluated; "{key}", "{count}", "{rule}" the
// firing itself. A missing value prints as "?".
import type { KrsiEvent } from '../signals/events.ts';
import type { ActionJson, CompiledRule, ConditionJson, Facts } from './rules/types.ts';
import type { AlertOut, Mode, Subject, Verdict, VerdictOut } from './types.ts';
import type { Firing } from './correlation/index.ts';
import { verdictId } from './enforcement/semantics.ts';
import { formatDuration as fmtNs } from '../lib/duration.ts';
import { visible as v } from '../lib/visible.ts';

type Part = string | { path: string[] };

export interface Template {
  parts: Part[];
}

export function compileTemplate(t: string): Template {
  const parts: Part[] = [];
  const re = /\{([A-Za-z0-9_.\-]+)\}/g;
  let last = 0;
  for (let m; (m = re.exec(t)); ) {
    if (m.index > last) parts.push(t.slice(last, m.index));
    parts.push({ path: m[1].split('.') });
    last = m.index + m[0].length;
  }
  if (last < t.length) parts.push(t.slice(last));
  return { parts };
}

function dig(o: unknown, path: string[], from: number): unknown {
  let v: any = o;
  for (let i = from; i < path.length; i++) {
    if (v == null) return undefined;
    v = v[path[i]];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined || v === null) return '?';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export function renderTemplate(t: Template, rule: CompiledRule, f: Firing): string {
  let out = '';
  for (const p of t.parts) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    const head = p.path[0];
    if (p.path.length === 1 && head === 'key') out += show(f.key);
    else if (p.path.length === 1 && head === 'count') out += show(f.count ?? f.events.length);
    else if (p.path.length === 1 && head === 'rule') out += rule.id;
    else {
      const si = f.steps ? f.steps.indexOf(head) : -1;
      out += si >= 0 && p.path.length > 1 ? show(dig(f.events[si], p.path, 1)) : show(dig(f.subject, p.path, 0));
    }
  }
  return out;
}

/** json-rules-engine conditions as one readable line */
export function conditionText(c: ConditionJson | undefined): string {
  if (!c) return 'any event';
  if ('all' in c) return c.all.length ? c.all.map((x) => paren(x)).join(' and ') : 'any event';
  if ('any' in c) return c.any.length ? c.any.map((x) => paren(x)).join(' or ') : 'nothing';
  if ('not' in c) return `not ${paren(c.not)}`;
  const ref = c.value as { fact?: unknown; path?: unknown } | null;
  const value = ref !== null && typeof ref === 'object' && typeof ref.fact === 'string' ? `fact ${ref.fact}${jsonPath(ref.path)}` : JSON.stringify(c.value);
  return `${c.fact}${jsonPath(c.path)} ${c.operator} ${value}`;
}

/** "$.env.X" -> ".env.X" */
function jsonPath(p: unknown): string {
  if (typeof p !== 'string' || !p) return '';
  return p.startsWith('$.') ? '.' + p.slice(2) : p.startsWith('$') ? p.slice(1) : '.' + p;
}

function paren(c: ConditionJson): string {
  const t = conditionText(c);
  return 'all' in c || 'any' in c ? `(${t})` : t;
}

/** what an event is about, after its type: " /bin/sh", " child 42", "" for exit and denied */
function eventWhat(e: KrsiEvent): string {
  switch (e.type) {
    case 'exec': return ` ${e.filename}`;
    case 'fork': return ` child ${e.child_pid}`;
    case 'unlink': return ` ${e.path}`;
    case 'rename': return ` ${e.path}`;
    case 'truncate': return ` ${e.path}`;
    case 'mprotect': return ` prot ${e.prot}${e.wx ? ' wx' : ''}`;
    case 'mmap': return ` prot ${e.prot}${e.wx ? ' wx' : ''}${e.anon ? ' anon' : ''}`;
    case 'lost': return ` ${e.count} ${e.class}`;
    case 'module_load': return ` ${e.name}`;
    case 'module_unload': return ` ${e.name}`;
    case 'module_list': return ` ${e.modules?.length ?? 0} modules`;
    default: return '';
  }
}

function eventLine(e: KrsiEvent): string {
  const p = e.exe?.path ?? '?';
  return `seq ${e.seq} ${e.type}${eventWhat(e)} pid ${e.pid} (${e.comm} ${p})`;
}

/** the source conditions of each step id, for explanations */
function stepConditions(rule: CompiledRule): Map<string, ConditionJson> {
  // keyed by the compiled step ids (the loader names unnamed steps step1.., first, then)
  const m = new Map<string, ConditionJson>();
  const c = rule.source.correlation;
  const k = rule.correlation;
  if (c && 'sequence' in c && k?.kind === 'sequence') c.sequence.steps.forEach((s, i) => m.set(k.steps[i]?.id || s.id || String(i), s.match));
  if (c && 'absent' in c && k?.kind === 'absent') {
    m.set(k.first.id || c.absent.first.id || 'first', c.absent.first.match);
    m.set(k.then.id || c.absent.then.id || 'then', c.absent.then.match);
  }
  return m;
}

const MAX_EXPLAIN_EVENTS = 6;

export function explain(rule: CompiledRule, f: Firing, cache: Map<string, ConditionJson>): string[] {
  const lines: string[] = [];
  if (f.why) lines.push(f.why);
  const n = f.events.length;
  for (let i = 0; i < n; i++) {
    if (n > MAX_EXPLAIN_EVENTS && i === MAX_EXPLAIN_EVENTS - 2) {
      lines.push(`... ${n - MAX_EXPLAIN_EVENTS + 1} more events`);
      i = n - 2;
      continue;
    }
    const e = f.events[i];
    const step = f.steps?.[i];
    const cond = step !== undefined ? cache.get(step) : rule.source.match;
    lines.push(`${step !== undefined ? `step ${step}: ` : ''}${eventLine(e)} matched ${conditionText(cond)}`);
  }
  return lines;
}

/** an action prepared once per rule */
export type ActionPlan =
  | { type: 'alert'; template: Template }
  | { type: 'verdict'; template: Template; action: Extract<ActionJson, { type: 'verdict' }>; ttl: number };

export class RuleActions {
  readonly plans: ActionPlan[];
  private conds: Map<string, ConditionJson>;

  constructor(readonly rule: CompiledRule) {
    this.conds = stepConditions(rule);
    let vi = 0;
    this.plans = rule.actions.map((a, i) => {
      const template = compileTemplate(('message' in a && a.message) || rule.description);
      if (a.type === 'alert') return { type: 'alert', template };
      // ttls: indexed by action index, or by verdict ordinal when it holds only verdict actions
      const ttl = rule.ttls.length === rule.actions.length ? rule.ttls[i] : (rule.ttls[vi] ?? 0);
      vi++;
      return { type: 'verdict', template, action: a, ttl: ttl ?? 0 };
    });
  }

  explain(f: Firing): string[] {
    return explain(this.rule, f, this.conds);
  }
}

/** the fields an alert and a verdict output share, in their order */
function firingOut(rule: CompiledRule, f: Firing, message: string) {
  return { rule: rule.id, tags: rule.tags, severity: rule.severity, pid: f.pid, ts: f.ts, events: f.seqs ?? seqs(f.events), message };
}

export function alertOut(rule: CompiledRule, f: Firing, message: string, lines: string[]): AlertOut {
  return { kind: 'alert', ...firingOut(rule, f, message), explain: lines };
}

export function seqs(events: KrsiEvent[]): number[] {
  const out = new Array<number>(events.length);
  for (let i = 0; i < events.length; i++) out[i] = events[i].seq ?? -1;
  return out;
}

/** the event that names the subject: the `from` step's event, else the firing's subject event */
export function subjectEvent(f: Firing, from: string | undefined): KrsiEvent {
  if (from !== undefined && f.steps) {
    const i = f.steps.indexOf(from);
    if (i >= 0) return f.events[i];
  }
  return f.subject;
}

/** the verdict subject named by an action, or a reason why the event cannot name one */
export function subjectOf(kind: Extract<ActionJson, { type: 'verdict' }>['subject'], e: KrsiEvent): Subject | string {
  switch (kind) {
    case 'pid':
      return { kind: 'pid', pid: e.pid };
    case 'exe':
      return e.exe ? { kind: 'inode', dev: e.exe.dev, ino: e.exe.ino } : 'event has no exe';
    case 'target': {
      const t = (e as { target?: { dev: number; ino: number } }).target;
      return t && t.ino ? { kind: 'inode', dev: t.dev, ino: t.ino } : `${e.type} event seq ${e.seq} has no target inode`;
    }
    case 'module': {
      const n = (e as { name?: unknown }).name;
      return typeof n === 'string' ? { kind: 'module', name: n } : `${e.type} event seq ${e.seq} has no module name`;
    }
    case 'module_file': {
      const fl = (e as { file?: { dev: number; ino: number } }).file;
      return fl ? { kind: 'module_file', dev: fl.dev, ino: fl.ino } : `${e.type} event seq ${e.seq} has no module file`;
    }
  }
}

/** the verdict a rule's action issues on its subject */
export function makeVerdict(rule: CompiledRule, plan: Extract<ActionPlan, { type: 'verdict' }>, subject: Subject, ts: number, mode: Mode): Verdict {
  return {
    id: verdictId(rule.id, plan.action.op, subject),
    rule: rule.id,
    op: plan.action.op,
    subject,
    ts,
    ttl_ns: plan.ttl,
    expires: plan.ttl ? ts + plan.ttl : 0,
    mode,
  };
}

export function verdictOut(rule: CompiledRule, f: Firing, v: Verdict, message: string, lines: string[], applied: boolean): VerdictOut {
  return {
    kind: 'verdict',
    id: v.id,
    ...firingOut(rule, f, message),
    explain: [...lines, `verdict: ${v.op === 'kill' ? 'kill' : `deny ${v.op} for`} ${formatSubject(v.subject)}${v.ttl_ns ? ` for ${fmtNs(v.ttl_ns)}` : ' until removed'}${applied ? '' : v.mode === 'enforce' ? ' (not applied: pid 1, krsi itself, or a subject enforcement cannot take; see the log)' : ' (monitor: not applied)'}`],
    op: v.op,
    subject: v.subject,
    ttl_ns: v.ttl_ns,
    expires: v.expires,
    mode: v.mode,
    applied,
  };
}

/** a verdict's subject, for people (names shown with control characters escaped) */
export function formatSubject(s: Subject): string {
  switch (s.kind) {
    case 'pid':
      return `pid ${s.pid}`;
    case 'inode':
      return `inode ${s.dev}:${s.ino}`;
    case 'module':
      return `module ${v(s.name)}`;
    case 'module_file':
      return `module file ${s.dev}:${s.ino}`;
  }
}

export type { Facts };
