// The rule language (JSON, documented in rules/README.md, schema in rules/schema.json) and its
// compiled form. The loader (engine/rules/load.ts: read -> validate -> compile -> index) turns
// files into CompiledRuleSet; the engine (engine/pipeline.ts) evaluates it.
import type { EventType, KrsiEvent } from '../../signals/events.ts';
import type { Mode, Severity, VerdictOp } from '../types.ts';

/** json-rules-engine condition syntax (all / any / not / leaf), as written in rule files */
export type ConditionJson =
  | { all: ConditionJson[] }
  | { any: ConditionJson[] }
  | { not: ConditionJson }
  | { fact: string; operator: string; value: unknown; path?: string; params?: Record<string, unknown> };

/** "10s", "500ms", "2m", "1h", or integer nanoseconds */
export type DurationJson = string | number;

export interface StepJson {
  id?: string;
  match: ConditionJson;
  /** key of this step, overriding the correlation's `by` (e.g. ["child_pid"]) */
  by?: string[];
}

export type CorrelationJson =
  | { sequence: { by: string[]; within: DurationJson; steps: StepJson[]; until?: { match: ConditionJson } } }
  | { count: { by: string[]; within: DurationJson; threshold: number; until?: { match: ConditionJson } } }
  | { distinct: { by: string[]; within: DurationJson; field: string; threshold: number; until?: { match: ConditionJson } } }
  | {
      absent: {
        by?: string[];
        within: DurationJson;
        first: StepJson;
        /** without `lacks`: fires when no `then` with the same key follows within the window.
         *  with `lacks`: fires on a `then` event whose `lacks.field` (an array) lacks the value of
         *  `lacks.from` in the `first` event (e.g. module_list lacking the loaded module's name). */
        then: StepJson & { lacks?: { field: string; from: string } };
        /** an event with the key that matches this ends the key's pending `first` events (with
         *  then.lacks: those whose `lacks.from` value it also has, e.g. a module_unload of that name) */
        until?: { match: ConditionJson };
      };
    };

export type ActionJson =
  | { type: 'alert'; message?: string }
  | {
      type: 'verdict';
      op: VerdictOp;
      /** pid: the event's pid; exe: its executable inode; target: unlink target inode;
       *  module: module name; module_file: the module's file inode */
      subject: 'pid' | 'exe' | 'target' | 'module' | 'module_file';
      /** "10m", 0 = no expiry */
      ttl: DurationJson;
      /** for sequences: the step whose event names the subject (default: the last) */
      from?: string;
    };

/** static in-kernel configuration a rule asks for when it enforces */
export interface KernelJson {
  /** the KRSI talk's counter, on W->X flips: past this many flips per tgid, deny its executable mprotects and mmaps */
  mprotect_limit?: number;
  /** name of a list of module names: only these may load */
  module_allowlist?: string;
  /** name of a list of module names: these may not load */
  module_denylist?: string;
  /** name of a list of paths: resolved to inodes at start, exec denied */
  deny_exec_paths?: string;
  /** deny exec of a memfd or of a file with no link left (config.flags KRSI_CFG_DENY_FILELESS) */
  deny_fileless_exec?: boolean;
}

export interface RuleJson {
  id: string;
  description: string;
  tags: string[];
  severity: Severity;
  enabled?: boolean;
  mode?: Mode;
  match: ConditionJson;
  correlation?: CorrelationJson;
  actions: ActionJson[];
  kernel?: KernelJson;
}

export interface RuleFileJson {
  lists?: Record<string, (string | number)[]>;
  rules: RuleJson[];
}

/** where something came from, for errors and explanations */
export interface SourceLoc {
  file: string;
  /** 1-based */
  line: number;
  /** 1-based */
  column: number;
  /** JSON pointer inside the file, e.g. /rules/2/match/all/0/operator */
  pointer: string;
}

/** the event as rules see it: the event's own fields plus `proc` (process table facts) */
export type Facts = KrsiEvent & { proc?: ProcFacts };

export interface ProcFacts {
  pid: number;
  ppid: number;
  comm: string;
  exe: { path: string; dev: number; ino: number };
  /** watched env vars seen at this process's exec (inherited across fork) */
  env: Record<string, string>;
  /** parent first, at most 16 */
  ancestors: { pid: number; comm: string; exe: string }[];
  start_ts: number;
  /** the loader variable this process runs with: set by an exec whose environment had a non-empty
   *  LD_PRELOAD or LD_AUDIT, inherited across fork (the child runs the injected library too, without an
   *  exec of its own), cleared by an exec without one. Absent: none (or unknown: a pid first seen mid-life) */
  loader_injected?: LoaderInjection;
}

/** the exec that injected a loader variable into a line of processes (engine/process-table.ts) */
export interface LoaderInjection {
  /** the injecting exec's pid (the root of the injected tree), its ts (with pid: the root's identity) */
  pid: number;
  ts: number;
  /** the variable and the library it names: the first of every injection (each LD_PRELOAD entry, LD_AUDIT,
   *  ld.so's --preload/--audit) that is not on preload_allowlist, else the first; a truncated environment or
   *  ld.so block names `<environment truncated>` / `<loader options truncated>` (fails closed) */
  var: 'LD_PRELOAD' | 'LD_AUDIT';
  value: string;
}

export type Predicate = (facts: Facts) => boolean;
export type KeyFn = (facts: Facts) => string | undefined;

export interface CompiledStep {
  /** the step's id (defaults: step1, step2, ... for sequences; first / then for absent; until) */
  id: string;
  types: EventType[] | '*';
  /** for sequence/absent steps this already includes the rule's `match` (until steps do not) */
  match: Predicate;
  key?: KeyFn;
  lacks?: { field: (f: Facts) => unknown; from: (f: Facts) => unknown };
}

export type CompiledCorrelation =
  | { kind: 'sequence'; key: KeyFn; keyFields: string[]; within: number; steps: CompiledStep[]; until?: CompiledStep }
  | { kind: 'count'; key: KeyFn; keyFields: string[]; within: number; threshold: number; until?: CompiledStep }
  | { kind: 'distinct'; key: KeyFn; keyFields: string[]; within: number; threshold: number; field: (f: Facts) => unknown; until?: CompiledStep }
  | { kind: 'absent'; key?: KeyFn; keyFields: string[]; within: number; first: CompiledStep; then: CompiledStep; until?: CompiledStep };

export interface CompiledRule {
  id: string;
  description: string;
  tags: string[];
  severity: Severity;
  mode: Mode;
  /** event types this rule can ever match (for indexing); '*' when it cannot be inferred */
  types: EventType[] | '*';
  /** the per-event match (for plain rules and count/distinct); for sequences/absent see steps */
  match: Predicate;
  correlation?: CompiledCorrelation;
  actions: ActionJson[];
  /** normalized durations: ttl in ns per verdict action index */
  ttls: number[];
  kernel?: KernelJson;
  /** the rule's original JSON, for json-rules-engine differential tests and explanations */
  source: RuleJson;
  loc: SourceLoc;
}

export interface CompiledRuleSet {
  rules: CompiledRule[];
  lists: Record<string, Set<string | number>>;
  /** event type -> rules that can match it (rules with types '*' are in every entry) */
  byType: Map<EventType, CompiledRule[]>;
}
