// Rule test results for people: expectations and outputs in one line each, a case as ✓/✗ with its
// expected/got diff. Event-derived strings go through visible().
import { relative } from 'node:path';
import type { Output } from '../types.ts';
import { visible } from '../../lib/visible.ts';
import type { CaseResult, Matcher } from './types.ts';

/** an expectation in words: `alert rule=x pid=4 (count 2)` */
export function describeMatcher(m: Matcher, none = false): string {
  const f: string[] = [];
  for (const k of ['rule', 'pid', 'op', 'severity', 'verdict', 'seq', 'applied'] as const) if (m[k] !== undefined) f.push(`${k}=${m[k]}`);
  if (m.message !== undefined) f.push(`message~${visible(JSON.stringify(m.message))}`);
  if (m.subject) f.push(`subject=${visible(JSON.stringify(m.subject))}`);
  if (m.ttl_ns !== undefined) f.push(`ttl=${m.ttl_ns}ns`);
  if (m.events) f.push(`events=[${m.events.join(',')}]`);
  const what = `${m.kind === 'any' ? 'output' : m.kind}${f.length ? ' ' + f.join(' ') : ''}`;
  if (none) return `no ${what}`;
  return m.count !== undefined ? `${m.count} × ${what}` : `${what} (at least one)`;
}

/** an output in one line: event-derived strings (messages, subjects) with control and bidi characters as
 *  escapes, so an event cannot add lines or drive the terminal */
export function describeOutput(o: Output): string {
  switch (o.kind) {
    case 'alert':
      return `alert ${o.rule} pid=${o.pid} ts=${o.ts} events=[${o.events.join(',')}] "${visible(o.message)}"`;
    case 'verdict':
      return `verdict ${o.rule} pid=${o.pid} op=${o.op} subject=${visible(JSON.stringify(o.subject))} ttl=${o.ttl_ns}ns ${o.applied ? 'applied' : 'not applied'} events=[${o.events.join(',')}]`;
    case 'denied':
      return `denied ${o.rule} pid=${o.pid} op=${o.op} seq=${o.seq} verdict=${o.verdict}`;
    default:
      return JSON.stringify(o);
  }
}

/** a case result for people: ✓/✗ name, and for a failure the expected/got diff */
export function formatCaseResult(r: CaseResult, verbose = false): string {
  const lines = [`  ${r.ok ? '✓' : '✗'} ${r.name}`];
  if (r.error) lines.push(...indent(`error: ${r.error}`, 6));
  for (const f of r.failures) {
    lines.push(`      ${f.at ? `${relPath(f.at.file)}:${f.at.line}: ` : ''}expected: ${f.expected}`);
    f.got.forEach((g, i) => lines.push(`      ${i === 0 ? '     got: ' : '          '}${g}`));
  }
  if (verbose) for (const o of r.outputs) lines.push(`      · ${describeOutput(o)}`);
  return lines.join('\n');
}

function indent(s: string, n: number): string[] {
  return s.split('\n').map((l) => ' '.repeat(n) + l);
}

export function relPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r.startsWith('..') ? p : r;
}
