// What a rule test file becomes once read (cases, expectations), and what running it gives.
import type { KrsiEvent } from '../../signals/events.ts';
import type { Mode, Output, Severity, VerdictOp } from '../types.ts';
import type { SourceLoc } from '../rules/types.ts';

export type OutKind = 'alert' | 'verdict' | 'denied';

/** one expectation: outputs of `kind` whose fields equal the given ones */
export interface Matcher {
  kind: OutKind | 'any';
  rule?: string;
  pid?: number;
  op?: VerdictOp;
  severity?: Severity;
  /** substring of the alert/verdict message */
  message?: string;
  /** verdicts: fields of the subject that must be equal */
  subject?: Record<string, unknown>;
  /** verdicts: ttl in ns */
  ttl_ns?: number;
  /** verdicts: applied (enforce) or only reported (monitor) */
  applied?: boolean;
  /** denied: the verdict id */
  verdict?: string;
  /** denied: seq of the refused event */
  seq?: number;
  /** alerts/verdicts: seq of the contributing events, in order */
  events?: number[];
  /** exact number of matching outputs; absent: at least one (none: zero) */
  count?: number;
  /** where it was written */
  at: SourceLoc;
}

export interface TestCase {
  file: string;
  name: string;
  at: SourceLoc;
  /** rule files / dirs, absolute */
  rules: string[];
  /** only these rule ids (like replay --rule) */
  only?: string[];
  mode?: Mode;
  events?: KrsiEvent[];
  /** a log path, absolute */
  log?: string;
  expect: { alerts: Matcher[]; verdicts: Matcher[]; denied: Matcher[]; none: Matcher[]; exact: boolean };
}

export interface TestFile {
  file: string;
  cases: TestCase[];
}

export interface TestIssue extends SourceLoc {
  message: string;
}

/** a test file that cannot be used: every problem found, located */
export class RuleTestError extends Error {
  constructor(readonly issues: TestIssue[]) {
    super(issues.map(formatTestIssue).join('\n'));
    this.name = 'RuleTestError';
  }
}

export function formatTestIssue(i: TestIssue): string {
  return `${i.file}:${i.line}:${i.column}: error ${i.pointer || '/'}: ${i.message}`;
}

export interface Failure {
  /** the expectation, in words */
  expected: string;
  /** what matched it (or, for a missing output, the outputs of that kind there were) */
  got: string[];
  at?: SourceLoc;
}

export interface CaseResult {
  file: string;
  name: string;
  at: SourceLoc;
  ok: boolean;
  failures: Failure[];
  /** alerts, verdicts and denials the replay produced, in order */
  outputs: Output[];
  /** the case could not run (rules failed to load, log unreadable) */
  error?: string;
}

export interface FileResult {
  file: string;
  cases: CaseResult[];
  /** the file itself is bad */
  issues?: TestIssue[];
}

export interface RunResult {
  files: FileResult[];
  passed: number;
  failed: number;
  /** files that could not be parsed */
  broken: number;
}

export interface RunOptions {
  /** replace every case's rules with these paths */
  rules?: string[];
  /** only cases whose name contains one of these */
  grep?: string[];
  onCase?(r: CaseResult): void;
}
