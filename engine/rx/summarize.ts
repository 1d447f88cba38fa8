// summarize: the last stage before the sinks. Counts each alert, verdict and denial (in all and per
// rule: every loaded rule has a row, zeros included), passes every output on, and on completion adds
// the summary `krsi replay` and `krsi run` end with: events evaluated, bad log lines, time and rate.
import type { OperatorFunction } from 'rxjs';
import type { CompiledRuleSet } from '../rules/types.ts';
import type { Output, SummaryOut } from '../types.ts';
import { operate } from '../../lib/rx/operate.ts';

export interface SummarizeOptions<X extends object> {
  rules: CompiledRuleSet;
  /** events evaluated (read at completion: the engine's count) */
  events: () => number;
  /** bad log lines skipped (replay with --skip-bad) */
  badLines?: () => number;
  /** more fields for the summary, read at completion (live: events lost in the kernel) */
  extra?: () => X;
}

export function summarize<X extends object = object>(o: SummarizeOptions<X>): OperatorFunction<Output, Output> {
  return operate<Output, Output>('summarize', (out) => {
    const started = process.hrtime.bigint();
    const s: SummaryOut = { kind: 'summary', events: 0, bad_lines: 0, alerts: 0, verdicts: 0, denied: 0, per_rule: {}, seconds: 0, events_per_sec: 0 };
    const per = s.per_rule;
    for (const r of o.rules.rules) per[r.id] = { alerts: 0, verdicts: 0, denied: 0 };
    return {
      next(x) {
        if (x.kind !== 'summary') {
          const r = (per[x.rule] ??= { alerts: 0, verdicts: 0, denied: 0 });
          if (x.kind === 'alert') s.alerts++, r.alerts++;
          else if (x.kind === 'verdict') s.verdicts++, r.verdicts++;
          else s.denied++, r.denied++;
        }
        out.next(x);
      },
      complete() {
        s.events = o.events();
        s.bad_lines = o.badLines?.() ?? 0;
        s.seconds = Number(process.hrtime.bigint() - started) / 1e9;
        s.events_per_sec = s.seconds > 0 ? Math.round(s.events / s.seconds) : 0;
        out.next({ ...s, ...o.extra?.() });
      },
    };
  });
}
