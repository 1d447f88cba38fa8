// Located, collected loader issues (Zod-style: one error class carrying issues[]).
import { messageFor, type IssueCode } from './messages.ts';
import type { SourceLoc } from './types.ts';

export interface RuleIssue extends SourceLoc {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  rule?: string;
}

export class RuleLoadError extends Error {
  constructor(readonly issues: RuleIssue[]) {
    const errors = issues.filter((i) => i.severity === 'error');
    super(
      `rules did not load: ${errors.length} error(s)\n` + errors.slice(0, 20).map(formatIssue).join('\n') +
        (errors.length > 20 ? `\n... and ${errors.length - 20} more` : ''),
    );
    this.name = 'RuleLoadError';
  }
}

/** "rules/x.json:12:7: error [rule-id] UNKNOWN_OPERATOR: ..." */
export function formatIssue(i: RuleIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.severity}${i.rule ? ` [${i.rule}]` : ''} ${i.code}: ${i.message}`;
}

export function hasErrors(issues: RuleIssue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}

/** where an issue is: file and pointer; line/column are looked up by the reader's source map */
export interface Where {
  file: string;
  pointer: string;
  /** point at the property name instead of its value */
  key?: boolean;
}

export type Locate = (w: Where) => { line: number; column: number; rule?: string };

export class IssueCollector {
  readonly issues: RuleIssue[] = [];
  constructor(private locate: Locate) {}

  add(code: IssueCode, where: Where, args: Record<string, string | number | undefined> = {}, rule?: string): void {
    const { severity, message } = messageFor(code, args);
    const loc = this.locate(where);
    this.issues.push({
      severity, code, message, file: where.file, line: loc.line, column: loc.column, pointer: where.pointer, rule: rule ?? loc.rule,
    });
  }
}
