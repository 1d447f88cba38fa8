// The summary replay and run end with: what was emitted, per rule and in all, and the event rate.
import type { CompiledRuleSet } from '../../engine/rules/types.ts';
import type { Output, SummaryOut } from '../../engine/types.ts';

/** an empty summary with a zero row for every rule */
export function emptySummary(rules: CompiledRuleSet): SummaryOut {
  const per: SummaryOut['per_rule'] = {};
  for (const r of rules.rules) per[r.id] = { alerts: 0, verdicts: 0, denied: 0 };
  return { kind: 'summary', events: 0, bad_lines: 0, alerts: 0, verdicts: 0, denied: 0, per_rule: per, seconds: 0, events_per_sec: 0 };
}

/** an emit that counts each alert, verdict and denial into `s` (in all and for its rule), then passes it to `emit` */
export function countingInto(s: SummaryOut, emit: (out: Output) => void): (out: Output) => void {
  const per = s.per_rule;
  return (out) => {
    if (out.kind === 'summary') return;
    const r = (per[out.rule] ??= { alerts: 0, verdicts: 0, denied: 0 });
    if (out.kind === 'alert') s.alerts++, r.alerts++;
    else if (out.kind === 'verdict') s.verdicts++, r.verdicts++;
    else s.denied++, r.denied++;
    emit(out);
  };
}

/** the run took from `t0` (process.hrtime.bigint()) until now: seconds and events/s */
export function timeSummary(s: SummaryOut, t0: bigint): void {
  s.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  s.events_per_sec = s.seconds > 0 ? Math.round(s.events / s.seconds) : 0;
}
