// krsi replay: run a recorded event log through the rules and show the alerts, the verdicts, and the
// events the kernel would have refused (the enforcement model applied to later events of the log).
import { Option, type Command } from 'commander';
import type { CompiledRuleSet } from '../../engine/rules/types.ts';
import type { Mode, Output, SummaryOut } from '../../engine/types.ts';
import type { KrsiEvent } from '../../signals/events.ts';
import { lastValueFrom } from 'rxjs';
import { each } from '../../lib/rx/each.ts';
import { UnknownRuleError, selectRules } from '../../engine/rules/select.ts';
import { EventError, SAMPLE_LOG, detectFormat, parseBound } from '../../engine/eventlog/index.ts';
import { OutputSink, createProgress, exitOnEpipe, type Format, type Progress } from '../output/index.ts';
import { visible } from '../../lib/visible.ts';

export interface ReplayOptions {
  log: string;
  rules: CompiledRuleSet;
  mode?: Mode;
  since?: string;
  until?: string;
  skipBad?: boolean;
  onBad?(e: EventError): void;
  progress?: Progress;
  /** called with the ts of the first event read (text output prints times relative to it) */
  onFirstEvent?(ts: number): void;
}

/** Replays a log through the pipeline (fromLog → krsiEngine → sinks); every output goes to `emit`, the
 *  summary last (and returned). `drain` paces the reading: it resolves when the sinks can take more. */
export async function replayLog(o: ReplayOptions, emit: (out: Output) => void, drain?: () => Promise<void>): Promise<SummaryOut> {
  // loaded when used: the CLI starts without the engine for other commands
  const [{ krsiEngine }, { fromLog }] = await Promise.all([import('../../engine/pipeline.ts'), import('../../engine/rx/from-log.ts')]);
  let bad = 0;
  const source = fromLog(
    o.log,
    {
      skipBad: o.skipBad,
      since: o.since,
      until: o.until,
      onBad: (e) => (bad++, o.onBad?.(e)),
      onProgress: o.progress && ((d, n) => o.progress!.update(d, n)),
    },
    drain,
  );
  const first = o.onFirstEvent;
  let seen = false;
  // text output prints times relative to the log's first event (not each batch's: found in review)
  const firstEvent = first ? each<KrsiEvent[]>('first-event', (b) => !seen && b.length && ((seen = true), first(b[0].ts))) : undefined;
  let summary: SummaryOut | undefined;
  const outputs = (firstEvent ? source.pipe(firstEvent) : source).pipe(
    krsiEngine({ rules: o.rules, mode: o.mode, summary: { badLines: () => bad } }),
    each<Output>('output', (x) => {
      if (x.kind === 'summary') summary = x;
      emit(x);
    }),
  );
  try {
    await lastValueFrom(outputs, { defaultValue: undefined });
  } finally {
    o.progress?.stop();
  }
  return summary!;
}

const HELP = `
Without LOG, replays the bundled sample log (rules/samples/sample.jsonl), which exercises every
bundled rule. LOG is a JSON Lines file (.jsonl), - for stdin, or an lmdb log (krsi log import).

--mode enforce applies every verdict (what a host running \`krsi run --mode enforce\` would do),
--mode monitor none; without --mode each rule's own mode decides. Applied verdicts are checked
against the later events of the log: those the kernel would refuse are reported as denied.

--since/--until take integer nanoseconds (event ts) or a duration after the log's first event
(500ms, 30s, 2m); since is inclusive, until exclusive.

--format json prints JSON Lines, one object per line with kind alert | verdict | denied | summary
(the summary last: events read, bad lines, per-rule counts, events/s).

--rules and --rule take several values: give LOG first (krsi replay my.jsonl --rules a/ b/) or end
the list with --.

Exit codes:
  0  replay done (alerts and denials are results, not errors)
  1  rule errors (every one is printed, located as file:line:column), a bad log line without
     --skip-bad (located as file:line: field ...), or an unreadable log
  2  usage error (unknown option, bad --format/--mode/--since/--until, unknown --rule id)
`;

interface CliOptions {
  rules?: string[];
  format: Format;
  mode?: Mode;
  rule?: string[];
  since?: string;
  until?: string;
  skipBad?: boolean;
}

function usage(msg: string): never {
  process.stderr.write(`krsi replay: ${msg}\n`);
  process.exit(2);
}

export function register(program: Command): void {
  program
    .command('replay')
    .description('replay an event log through the rules: alerts, verdicts, and what would have been denied')
    .argument('[log]', 'JSON Lines file, - for stdin, or lmdb log (default: the bundled sample log)')
    .option('--rules <dir...>', 'rule files or directories of *.json (default: the bundled rules)')
    .addOption(new Option('--format <fmt>', 'output format').choices(['text', 'json']).default('text'))
    .addOption(new Option('--mode <mode>', 'override every rule mode').choices(['monitor', 'enforce']))
    .option('--rule <id...>', 'only these rules')
    .option('--since <t>', 'first event time: integer ns, or a duration after the first event')
    .option('--until <t>', 'stop before this event time: integer ns, or a duration after the first event')
    .option('--skip-bad', 'skip bad log lines and count them instead of stopping at the first')
    .addHelpText('after', HELP)
    .action(async (log: string | undefined, opts: CliOptions) => {
      for (const [name, v] of [['since', opts.since], ['until', opts.until]] as const) {
        if (v === undefined) continue;
        try {
          parseBound(v, `--${name}`);
        } catch (e) {
          usage((e as Error).message);
        }
      }
      // every issue (warnings too) printed located; any error loads nothing
      const { BUNDLED_RULES_DIR, formatIssue, loadRuleSourcesFromPaths } = await import('../../engine/rules/load.ts');
      const loaded = await loadRuleSourcesFromPaths(opts.rules?.length ? opts.rules : [BUNDLED_RULES_DIR]);
      for (const i of loaded.issues) process.stderr.write(formatIssue(i) + '\n');
      if (!loaded.ok || !loaded.set) {
        const n = loaded.issues.filter((i) => i.severity === 'error').length;
        process.stderr.write(`krsi replay: ${n} rule error${n === 1 ? '' : 's'}; nothing replayed\n`);
        process.exit(1);
      }
      let rules: CompiledRuleSet = loaded.set;
      if (opts.rule?.length) {
        try {
          rules = selectRules(rules, opts.rule);
        } catch (e) {
          if (!(e instanceof UnknownRuleError)) throw e;
          usage(`--rule: ${e.message}`);
        }
      }
      exitOnEpipe();
      const sink = new OutputSink(opts.format);
      let shown = 0;
      const onBad = (e: EventError) => {
        if (shown++ < 20) process.stderr.write(`skipped ${visible(e.message)}\n`);
        else if (shown === 21) process.stderr.write('(more bad lines skipped; the summary counts them)\n');
      };
      const path = log ?? SAMPLE_LOG;
      let unit: 'bytes' | 'events' = 'bytes';
      try {
        unit = detectFormat(path) === 'lmdb' ? 'events' : 'bytes';
      } catch {
        // readEvents reports it below
      }
      const progress = createProgress('replay', unit);
      // output and bar on the same terminal: erase the bar before printing, it redraws below
      if (process.stdout.isTTY) sink.beforeWrite = () => progress.clear();
      try {
        await replayLog(
          {
            log: path,
            rules,
            mode: opts.mode,
            since: opts.since,
            until: opts.until,
            skipBad: opts.skipBad,
            onBad,
            progress,
            onFirstEvent: (ts) => (sink.ctx.t0 = ts),
          },
          sink.write,
          () => sink.drain(),
        );
      } catch (e) {
        await sink.end();
        if (e instanceof EventError) {
          process.stderr.write(`krsi replay: ${e.message}\n(use --skip-bad to go on past bad lines)\n`);
          process.exit(1);
        }
        process.stderr.write(`krsi replay: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      }
      await sink.end();
    });
}
