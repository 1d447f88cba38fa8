// Outputs against expectations: which output meets which Matcher, and a Failure for each one unmet.
import type { Output } from '../types.ts';
import { describeMatcher, describeOutput } from './format.ts';
import type { Obj } from './reader.ts';
import type { Failure, Matcher, TestCase } from './types.ts';

function matches(m: Matcher, o: Output): boolean {
  if (o.kind === 'summary') return false;
  if (m.kind !== 'any' && o.kind !== m.kind) return false;
  if (m.rule !== undefined && o.rule !== m.rule) return false;
  if (m.pid !== undefined && o.pid !== m.pid) return false;
  if (m.op !== undefined && (o.kind === 'alert' || o.op !== m.op)) return false;
  if (o.kind === 'denied') {
    if (m.verdict !== undefined && o.verdict !== m.verdict) return false;
    if (m.seq !== undefined && o.seq !== m.seq) return false;
    return true;
  }
  if (m.severity !== undefined && o.severity !== m.severity) return false;
  if (m.message !== undefined && !o.message.includes(m.message)) return false;
  if (m.events !== undefined && (o.events.length !== m.events.length || o.events.some((s, i) => s !== m.events![i]))) return false;
  if (o.kind === 'verdict') {
    if (m.applied !== undefined && o.applied !== m.applied) return false;
    if (m.ttl_ns !== undefined && o.ttl_ns !== m.ttl_ns) return false;
    if (m.subject) for (const [k, v] of Object.entries(m.subject)) if ((o.subject as unknown as Obj)[k] !== v) return false;
  }
  return true;
}

const GOT_MAX = 8;

function listGot(outs: Output[]): string[] {
  if (outs.length === 0) return ['(nothing)'];
  const lines = outs.slice(0, GOT_MAX).map(describeOutput);
  if (outs.length > GOT_MAX) lines.push(`… and ${outs.length - GOT_MAX} more`);
  return lines;
}

/** every expectation checked against the outputs; failures say what was expected and what there was */
export function compare(expect: TestCase['expect'], outputs: Output[]): Failure[] {
  const failures: Failure[] = [];
  const covered = new Set<Output>();
  for (const m of [...expect.alerts, ...expect.verdicts, ...expect.denied]) {
    const hit = outputs.filter((o) => matches(m, o));
    hit.forEach((o) => covered.add(o));
    const ok = m.count === undefined ? hit.length > 0 : hit.length === m.count;
    if (ok) continue;
    // nothing matched: show the outputs of that kind (same rule first) to diff against
    const sameKind = outputs.filter((o) => o.kind === m.kind);
    const sameRule = sameKind.filter((o) => m.rule === undefined || (o.kind !== 'summary' && o.rule === m.rule));
    failures.push({
      expected: describeMatcher(m),
      got: hit.length ? [`${hit.length} matching:`, ...listGot(hit)] : [`no match; ${m.kind}s${sameRule.length && m.rule ? ` of ${m.rule}` : ''}:`, ...listGot(sameRule.length ? sameRule : sameKind)],
      at: m.at,
    });
  }
  for (const m of expect.none) {
    const hit = outputs.filter((o) => matches(m, o));
    if (hit.length) failures.push({ expected: describeMatcher(m, true), got: listGot(hit), at: m.at });
  }
  if (expect.exact) {
    const extra = outputs.filter((o) => o.kind !== 'summary' && !covered.has(o));
    if (extra.length) failures.push({ expected: 'exactly the expected outputs (exact: true)', got: ['unexpected:', ...listGot(extra)] });
  }
  return failures;
}
