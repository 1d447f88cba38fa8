// Text output for people: one line per alert, verdict or denial, times relative to the first event,
// and a summary block at the end. Every string that can come from an event (or a rule or log that an
// attacker wrote) goes through visible(): a control character never reaches the terminal raw.
import type { Output, SummaryOut } from '../../engine/types.ts';
import { formatSubject } from '../../engine/actions.ts';
import { formatDuration } from '../../lib/duration.ts';
import { visible as v } from '../../lib/visible.ts';

export interface TextContext {
  /** ts of the log's first event; times print as +seconds after it */
  t0?: number;
}

function rel(ts: number, ctx: TextContext): string {
  if (ctx.t0 === undefined) return `ts ${ts}`;
  return `+${((ts - ctx.t0) / 1e9).toFixed(6)}s`;
}

/** a verdict's ttl: 0 is a verdict that does not expire */
export function formatTtl(ns: number): string {
  return ns ? formatDuration(ns) : 'no expiry';
}

function seqs(events: number[]): string {
  if (events.length <= 6) return events.join(',');
  return `${events.slice(0, 3).join(',')},…,${events.slice(-2).join(',')} (${events.length})`;
}

function summary(s: SummaryOut): string {
  const lines = [
    `summary: ${s.events} events${s.bad_lines ? `, ${s.bad_lines} bad lines skipped` : ''} in ${s.seconds.toFixed(3)}s (${Math.round(s.events_per_sec).toLocaleString('en-US')} events/s)`,
    `  ${s.alerts} alerts, ${s.verdicts} verdicts, ${s.denied} denied`,
  ];
  const ids = Object.keys(s.per_rule).sort();
  const w = Math.max(0, ...ids.map((id) => id.length));
  for (const id of ids) {
    const r = s.per_rule[id];
    lines.push(`  ${v(id).padEnd(w)}  alerts ${r.alerts}  verdicts ${r.verdicts}  denied ${r.denied}`);
  }
  return lines.join('\n') + '\n';
}

export function formatText(o: Output, ctx: TextContext = {}): string {
  switch (o.kind) {
    case 'alert':
      return `ALERT    ${v(o.severity).padEnd(8)} ${v(o.rule)}  pid ${o.pid}  ${rel(o.ts, ctx)}  ${v(o.message)}  [events ${seqs(o.events)}]\n${explain(o.explain)}`;
    case 'verdict': {
      const state = o.applied ? 'applied' : o.mode === 'enforce' ? 'not applied (exempt or not enforceable)' : `not applied (${o.mode} mode)`;
      return `VERDICT  ${v(o.severity).padEnd(8)} ${v(o.rule)}  pid ${o.pid}  ${rel(o.ts, ctx)}  ${o.op === 'kill' ? 'kill' : `deny ${v(o.op)} for`} ${formatSubject(o.subject)}${o.descendants?.length ? ` and ${o.descendants.length} descendant(s) (pids ${o.descendants.join(' ')})` : ''}, ttl ${formatTtl(o.ttl_ns)}, ${state}  [events ${seqs(o.events)}]\n${explain(o.explain)}`;
    }
    case 'denied':
      return `DENIED   ${''.padEnd(8)} ${v(o.rule)}  pid ${o.pid}  ${rel(o.ts, ctx)}  ${v(o.op)} of event ${o.seq} would be refused${o.reason ? ` (${v(o.reason)})` : ''} by verdict ${v(o.verdict)}\n`;
    case 'summary':
      return summary(o);
  }
}

const EXPLAIN_MAX = 8;

function explain(lines: string[] | undefined): string {
  if (!lines?.length) return '';
  const shown = lines.length > EXPLAIN_MAX ? [...lines.slice(0, EXPLAIN_MAX - 2), `… ${lines.length - EXPLAIN_MAX + 1} more`, lines[lines.length - 1]] : lines;
  return shown.map((l) => `           - ${v(l)}\n`).join('');
}
