// The engine core, synchronous: one event at a time, in ts order. For each event it
//   1. fires absences whose deadline the event's time has passed;
//   2. asks enforcement about it (check): replay's model says whether the kernel would have refused it,
//      and a refused event is reported as `denied` and goes no further, as it would not have happened;
//      a `denied` event from the kernel is reported as enforcement attributes it (denied);
//   3. updates the process table and sets the `proc` fact;
//   4. runs the rules indexed under the event's type (plain match or correlation);
//   5. on exit, ends pid-keyed correlation state and frees the process entry.
// Firings become alerts and verdicts (engine/actions.ts); a verdict whose effective mode is enforce
// (--mode override, else the rule's own) is applied (apply), so it acts on *later* events.
// Time is event time only: replay is deterministic.
import type { EventType, KrsiEvent } from '../signals/events.ts';
import { EVENT_TYPES } from '../signals/events.ts';
import type { CompiledRule, CompiledRuleSet, Facts } from './rules/types.ts';
import type { DeniedOut, Mode, Output } from './types.ts';
import { ProcessTable, type ProcessTableStats } from './process-table.ts';
import { EnforcementModel } from './enforcement/model.ts';
import type { Enforcement } from './enforcement/enforcement.ts';
import type { Correlator, Firing, Sink } from './correlation/index.ts';
import type { StoreStats } from './correlation/keyed-window.ts';
import { SequenceCorrelator } from './correlation/sequence.ts';
import { CountCorrelator } from './correlation/count.ts';
import { DistinctCorrelator } from './correlation/distinct.ts';
import { AbsentCorrelator } from './correlation/absent.ts';
import { RuleActions, alertOut, makeVerdict, renderTemplate, subjectEvent, subjectOf, verdictOut } from './actions.ts';
import { childLogger } from '../lib/logger.ts';
import { usesProc } from './rules/reads.ts';

const log = childLogger('engine');

export interface EngineOptions {
  rules: CompiledRuleSet;
  /** global override of each rule's mode (krsi --mode) */
  mode?: Mode;
  /** correlation keys kept per rule; the oldest is evicted beyond it (default 10000) */
  maxKeysPerRule?: number;
  /** process table entries (default 65536) */
  maxProcs?: number;
  /** what refuses and applies: default the replay model of the rules' kernel blocks and verdicts
   *  (enforcement/model.ts); live, the enforcer's (enforcers/) or unenforced() */
  enforcement?: Enforcement;
}

export interface RuleCounts {
  alerts: number;
  verdicts: number;
  denied: number;
  errors: number;
}

export interface EngineStats {
  events: number;
  alerts: number;
  verdicts: number;
  denied: number;
  /** events not evaluated further because the model refused them */
  refused: number;
  /** predicates or actions that threw (the rule is skipped for that event) */
  errors: number;
  /** events whose ts went backwards (evaluated, clock not moved back) */
  late: number;
  /** verdict actions whose event could not name the subject (e.g. unlink without target inode) */
  no_subject: number;
  /** forks whose child pid was still a live process here (its exit event was lost): that process's
   *  pid-keyed state was ended as if it had exited */
  lost_exits: number;
  per_rule: Record<string, RuleCounts>;
  procs: ProcessTableStats;
  correlation: Record<string, StoreStats>;
  enforcement: Record<string, number>;
}


/** plain rules: the per-event match fires on its own */
class MatchRunner implements Correlator {
  readonly types: EventType[] | '*';
  constructor(
    readonly rule: CompiledRule,
    private sink: Sink,
  ) {
    this.types = rule.types;
  }
  onEvent(f: Facts): void {
    if (this.rule.match(f)) this.sink.fire(this.rule, { ts: f.ts, pid: f.pid, events: [f], subject: f });
  }
  onExit(): void {}
  nextDeadline(): number {
    return Infinity;
  }
  advance(): void {}
  stats(): StoreStats {
    return { keys: 0, cap: 0, evictions: 0, expired: 0 };
  }
}

interface RuleCtx {
  rule: CompiledRule;
  actions: RuleActions;
  counts: RuleCounts;
  mode: Mode;
}

export class Engine implements Sink {
  readonly procs: ProcessTable;
  private runners: Correlator[] = [];
  private byType = new Map<string, Correlator[]>();
  private timed: Correlator[] = [];
  private exitWatchers: Correlator[] = [];
  private ctx = new Map<CompiledRule, RuleCtx>();
  private ctxById = new Map<string, RuleCtx>();
  private readonly enforcement: Enforcement;
  /** some rule reads the `proc` fact (conditions, keys, fields or templates) */
  private needsProc: boolean;
  private emit: (o: Output) => void = () => {};
  private emitError: unknown = undefined;
  private now = 0;
  private nextSeq = 0;
  private deadline = Infinity;
  private s = { events: 0, alerts: 0, verdicts: 0, denied: 0, refused: 0, errors: 0, late: 0, no_subject: 0, lost_exits: 0 };

  constructor(readonly opts: EngineOptions) {
    const cap = opts.maxKeysPerRule ?? 10_000;
    this.enforcement = opts.enforcement ?? new EnforcementModel({ rules: opts.rules, mode: opts.mode });
    // the loader mark names the first injected library not on preload_allowlist (process-table.ts injectionOf)
    this.procs = new ProcessTable(opts.maxProcs ?? 65536, opts.rules.lists?.preload_allowlist);
    this.needsProc = opts.rules.rules.some(usesProc);
    for (const t of EVENT_TYPES) this.byType.set(t, []);
    for (const rule of opts.rules.rules) {
      const c: RuleCtx = { rule, actions: new RuleActions(rule), counts: { alerts: 0, verdicts: 0, denied: 0, errors: 0 }, mode: opts.mode ?? rule.mode };
      this.ctx.set(rule, c);
      this.ctxById.set(rule.id, c);
      const r = this.runnerFor(rule, cap);
      this.runners.push(r);
      for (const t of r.types === '*' ? EVENT_TYPES : r.types) this.byType.get(t)?.push(r);
      if (rule.correlation?.kind === 'absent') this.timed.push(r);
      if (rule.correlation && rule.correlation.kind !== 'absent') this.exitWatchers.push(r);
    }
  }

  private runnerFor(rule: CompiledRule, cap: number): Correlator {
    switch (rule.correlation?.kind) {
      case undefined:
        return new MatchRunner(rule, this);
      case 'sequence':
        return new SequenceCorrelator(rule, this, cap);
      case 'count':
        return new CountCorrelator(rule, this, cap);
      case 'distinct':
        return new DistinctCorrelator(rule, this, cap);
      case 'absent':
        return new AbsentCorrelator(rule, this, cap);
    }
  }

  /** the engine's event time: the latest ts seen (or advanced to), ns */
  get time(): number {
    return this.now;
  }

  /** evaluate one event (events must come in ts order); outputs go to emit, synchronously */
  push(ev: KrsiEvent, emit: (o: Output) => void): void {
    this.emit = emit;
    if (ev.seq === undefined) ev.seq = this.nextSeq;
    this.nextSeq = ev.seq + 1;
    const ts = ev.ts;
    if (ts < this.now) this.s.late++;
    else this.now = ts;
    if (this.deadline < ts) this.fireDeadlines(ts);
    this.s.events++;

    const type = ev.type;
    // a memory event from an older log (or another producer) without wx means what it meant: W+X iff prot
    // has PROT_WRITE and PROT_EXEC (signals/EVENTS.md); rules test wx
    if ((type === 'mprotect' || type === 'mmap') && ev.wx === undefined) ev.wx = (ev.prot & 6) === 6;
    if (type === 'denied') {
      const d = this.enforcement.denied(ev);
      if (d !== undefined) this.denied(d);
    } else {
      const d = this.enforcement.check(ev);
      if (d !== undefined) {
        this.denied(d);
        this.s.refused++;
        return;
      }
    }

    // a fork's child pid is a new process: whatever this pid did before ended (its exit may have been
    // lost, e.g. to a full ring buffer), so a reused pid never completes a stale pid-keyed sequence
    if (type === 'fork') this.newPid(ev);
    const f = ev as Facts;
    const proc = this.procs.observe(ev);
    // only when a rule reads it: adding a property to every event costs an allocation
    if (this.needsProc) f.proc = proc;
    const list = this.byType.get(type);
    if (list !== undefined) {
      for (let i = 0; i < list.length; i++) {
        try {
          list[i].onEvent(f);
        } catch (e) {
          this.ruleError(list[i].rule, e, ev);
        }
      }
    }
    if (type === 'exit') {
      const w = this.exitWatchers;
      for (let i = 0; i < w.length; i++) w[i].onExit(f);
      this.procs.release(ev.pid);
    }
    if (this.needsProc) f.proc = undefined;
    if (this.timed.length !== 0) this.refreshDeadline();
  }

  /** a fork named `ev.child_pid` as new: end the pid-keyed state of the process that had that pid */
  private newPid(ev: Extract<KrsiEvent, { type: 'fork' }>): void {
    const pid = ev.child_pid;
    if (pid === ev.pid) return; // a thread of the same process
    const stale = this.procs.get(pid);
    // an entry made at or after the fork is the child itself, reported early (a denied event from
    // the enforcement ring can come before the fork that made its process): nothing stale
    if (stale !== undefined && stale.start_ts >= ev.ts) return;
    if (stale !== undefined) this.s.lost_exits++;
    const w = this.exitWatchers;
    if (w.length === 0) return;
    // what that process's exit would have said (the watchers key on its pid)
    const exit = { ts: ev.ts, type: 'exit', pid, ppid: stale?.ppid ?? 0, uid: ev.uid, comm: stale?.comm ?? '', exe: stale?.exe ?? ev.exe, code: 0, seq: ev.seq } as Facts;
    for (let i = 0; i < w.length; i++) w[i].onExit(exit);
  }

  /** event time moved to `now` without an event (a live heartbeat): fire absences that passed */
  advance(now: number, emit: (o: Output) => void): void {
    this.emit = emit;
    if (now > this.now) this.now = now;
    if (this.deadline < now) this.fireDeadlines(now);
  }

  /** end of input. Nothing is fired: absences whose deadline was not reached by event time stay
   *  undecided (the future is unknown). */
  finish(emit: (o: Output) => void): void {
    this.emit = emit;
  }

  /** Sink: a rule fired */
  fire(rule: CompiledRule, f: Firing): void {
    const c = this.ctx.get(rule)!;
    const lines = c.actions.explain(f);
    const plans = c.actions.plans;
    if (plans.length === 0) {
      this.out(alertOut(rule, f, rule.description, lines));
      c.counts.alerts++;
      this.s.alerts++;
      return;
    }
    for (const p of plans) {
      const message = renderTemplate(p.template, rule, f);
      if (p.type === 'alert') {
        this.out(alertOut(rule, f, message, lines));
        c.counts.alerts++;
        this.s.alerts++;
        continue;
      }
      const subject = subjectOf(p.action.subject, subjectEvent(f, p.action.from));
      if (typeof subject === 'string') {
        this.s.no_subject++;
        log.debug({ rule: rule.id }, `verdict not issued: ${subject}`);
        continue;
      }
      const v = makeVerdict(rule, p, subject, f.ts, c.mode);
      // a pid verdict covers the processes it forked before the verdict, as the kernel covers later forks
      const descendants = subject.kind === 'pid' ? this.procs.descendants(subject.pid) : [];
      const applied = c.mode === 'enforce' && this.enforcement.apply(v, descendants);
      const out = verdictOut(rule, f, v, message, lines, applied);
      if (descendants.length !== 0) out.descendants = descendants;
      this.out(out);
      c.counts.verdicts++;
      this.s.verdicts++;
    }
  }

  stats(): EngineStats {
    const per_rule: Record<string, RuleCounts> = {};
    const correlation: Record<string, StoreStats> = {};
    for (const [id, c] of this.ctxById) per_rule[id] = { ...c.counts };
    for (const r of this.runners) if (r.rule.correlation) correlation[r.rule.id] = r.stats();
    return { ...this.s, per_rule, procs: this.procs.stats(), correlation, enforcement: this.enforcement.sizes() };
  }

  private out(o: Output): void {
    try {
      this.emit(o);
    } catch (e) {
      this.emitError = e;
      throw e;
    }
  }

  private denied(d: DeniedOut): void {
    this.s.denied++;
    const c = this.ctxById.get(d.rule);
    if (c) c.counts.denied++;
    this.out(d);
  }

  private fireDeadlines(now: number): void {
    for (const r of this.timed) {
      if (r.nextDeadline() < now) {
        try {
          r.advance(now);
        } catch (e) {
          this.ruleError(r.rule, e, undefined);
        }
      }
    }
    this.refreshDeadline();
  }

  private refreshDeadline(): void {
    let d = Infinity;
    const t = this.timed;
    for (let i = 0; i < t.length; i++) {
      const x = t[i].nextDeadline();
      if (x < d) d = x;
    }
    this.deadline = d;
  }

  private ruleError(rule: CompiledRule, e: unknown, ev: KrsiEvent | undefined): void {
    if (e === this.emitError) throw e;
    const c = this.ctx.get(rule)!;
    if (c.counts.errors++ === 0) log.error({ rule: rule.id, seq: ev?.seq, err: String(e) }, 'rule evaluation threw; skipping the rule for this event (logged once per rule)');
    this.s.errors++;
  }
}
