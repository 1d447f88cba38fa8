// A case's "expect": the alerts, verdicts and denials it wants (or must not see), as Matchers.
import type { Severity, VerdictOp } from '../types.ts';
import { parseDuration } from '../../lib/duration.ts';
import { describe, type Reader } from './reader.ts';
import type { Matcher, OutKind, TestCase } from './types.ts';

const EXPECT_FIELDS = ['alerts', 'verdicts', 'denied', 'none', 'exact'];
const MATCHER_FIELDS: Record<OutKind | 'any', string[]> = {
  alert: ['rule', 'pid', 'severity', 'message', 'events', 'count'],
  verdict: ['rule', 'pid', 'op', 'severity', 'message', 'subject', 'ttl', 'applied', 'events', 'count'],
  denied: ['rule', 'pid', 'op', 'verdict', 'seq', 'count'],
  any: ['kind', 'rule', 'pid', 'op', 'seq', 'verdict'],
};
const OPS = ['exec', 'mprotect_exec', 'module_load', 'quarantine', 'kill'];
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];

export function readExpect(r: Reader, v: unknown, pointer: string): TestCase['expect'] {
  const e: TestCase['expect'] = { alerts: [], verdicts: [], denied: [], none: [], exact: false };
  const o = r.object(v, pointer, EXPECT_FIELDS);
  if (!o) return e;
  if (Object.keys(o).length === 0) r.fail(pointer, 'expects nothing: give alerts, verdicts, denied or none');
  e.alerts = readMatchers(r, o.alerts, `${pointer}/alerts`, 'alert');
  e.verdicts = readMatchers(r, o.verdicts, `${pointer}/verdicts`, 'verdict');
  e.denied = readMatchers(r, o.denied, `${pointer}/denied`, 'denied');
  if (o.none === true) e.none = [{ kind: 'any', at: r.where(`${pointer}/none`) }];
  else e.none = readMatchers(r, o.none, `${pointer}/none`, 'any');
  if (o.exact !== undefined) {
    if (typeof o.exact !== 'boolean') r.fail(`${pointer}/exact`, `must be true or false, got ${describe(o.exact)}`);
    else e.exact = o.exact;
  }
  return e;
}

function readMatchers(r: Reader, v: unknown, pointer: string, kind: OutKind | 'any'): Matcher[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    r.fail(pointer, `must be an array of expectations${kind === 'any' ? ' (or true: nothing at all)' : ''}, got ${describe(v)}`);
    return [];
  }
  const out: Matcher[] = [];
  v.forEach((m, i) => {
    const p = `${pointer}/${i}`;
    const o = r.object(m, p, MATCHER_FIELDS[kind]);
    if (!o) return;
    const x: Matcher = { kind, at: r.where(p) };
    if (kind === 'any') x.kind = r.oneOf<OutKind>(o, 'kind', p, ['alert', 'verdict', 'denied']) ?? 'any';
    x.rule = r.string(o, 'rule', p);
    x.pid = r.uint(o, 'pid', p);
    x.op = r.oneOf<VerdictOp>(o, 'op', p, OPS);
    x.severity = r.oneOf<Severity>(o, 'severity', p, SEVERITIES);
    x.message = r.string(o, 'message', p);
    x.verdict = r.string(o, 'verdict', p);
    x.seq = r.uint(o, 'seq', p);
    x.count = r.uint(o, 'count', p);
    if (o.subject !== undefined) x.subject = r.object(o.subject, `${p}/subject`, ['kind', 'pid', 'dev', 'ino', 'name']);
    if (o.applied !== undefined) {
      if (typeof o.applied !== 'boolean') r.fail(`${p}/applied`, `must be true or false, got ${describe(o.applied)}`);
      else x.applied = o.applied;
    }
    if (o.ttl !== undefined) {
      try {
        x.ttl_ns = parseDuration(o.ttl as string | number);
      } catch (e) {
        r.fail(`${p}/ttl`, (e as Error).message);
      }
    }
    if (o.events !== undefined) {
      if (!Array.isArray(o.events) || o.events.some((s) => typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0)) {
        r.fail(`${p}/events`, `must be an array of event seq numbers, got ${describe(o.events)}`);
      } else x.events = o.events as number[];
    }
    if (kind !== 'any' && Object.keys(o).length === 0) r.fail(p, 'an empty expectation matches anything: name at least the rule');
    out.push(x);
  });
  return out;
}
