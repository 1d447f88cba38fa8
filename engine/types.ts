// Shared engine types: what rules produce (alerts, verdicts) and what replay/enforcement report (denied).
// These objects are printed as JSON Lines by `krsi replay --format json` and `krsi run --format json`.
import type { FileId } from '../signals/events.ts';
import type { DenyReason } from '../bpf/abi.ts';

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';
export type Mode = 'monitor' | 'enforce';

/** operations an enforcement program can refuse */
export type VerdictOp = 'exec' | 'mprotect_exec' | 'module_load' | 'quarantine' | 'kill';

/** who a verdict applies to */
export type Subject =
  | { kind: 'pid'; pid: number }
  | { kind: 'inode'; dev: number; ino: number }
  | { kind: 'module'; name: string }
  | { kind: 'module_file'; dev: number; ino: number };

export interface Verdict {
  /** stable id: `${rule}:${op}:${subject key}` */
  id: string;
  rule: string;
  op: VerdictOp;
  subject: Subject;
  /** issued at (event time, ns) */
  ts: number;
  /** 0 = no expiry */
  ttl_ns: number;
  /** ts + ttl_ns, or 0 for no expiry */
  expires: number;
  mode: Mode;
}

/** one line of replay/run JSON output */
export interface AlertOut {
  kind: 'alert';
  rule: string;
  tags: string[];
  severity: Severity;
  pid: number;
  ts: number;
  /** seq of the contributing events, oldest first */
  events: number[];
  message: string;
  /** why it fired: each contributing step/condition, human readable */
  explain?: string[];
}

export interface VerdictOut extends Omit<AlertOut, 'kind'> {
  kind: 'verdict';
  /** the Verdict id (`${rule}:${op}:${subject key}`) */
  id?: string;
  op: VerdictOp;
  subject: Subject;
  ttl_ns: number;
  expires: number;
  mode: Mode;
  /** true when the verdict is applied (enforce mode); false in monitor mode */
  applied: boolean;
  /** pid verdicts: the live descendants of the pid the process table knew, covered by the verdict too
   *  (forked before it; later forks inherit it in the kernel) */
  descendants?: number[];
}

export interface DeniedOut {
  kind: 'denied';
  ts: number;
  /** seq of the event that would have been (replay) or was (live) refused */
  seq: number;
  pid: number;
  /** 'unknown': a record of an op this version does not know (reported, blamed on nothing) */
  op: VerdictOp | 'mprotect_exec' | 'tamper' | 'unknown';
  /** the verdict id that caused it (or 'kernel:mprotect_limit' for the in-kernel counter) */
  verdict: string;
  rule: string;
  /** which check refused it: a key of KRSI_DENY in engine/enforcement/semantics.ts (krsi_deny_reason) */
  reason?: DenyReason;
  /** op tamper only: what was attempted (the denied event's key) and whether it was refused (a signal is only reported) */
  key?: Record<string, unknown>;
  enforced?: boolean;
}

export interface SummaryOut {
  kind: 'summary';
  events: number;
  bad_lines: number;
  alerts: number;
  verdicts: number;
  denied: number;
  per_rule: Record<string, { alerts: number; verdicts: number; denied: number }>;
  seconds: number;
  events_per_sec: number;
}

export type Output = AlertOut | VerdictOut | DeniedOut | SummaryOut;

export type { FileId };
