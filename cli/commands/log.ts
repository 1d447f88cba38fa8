// krsi log import|export|info: move event logs between JSON Lines and lmdb, and describe them.
import type { Command } from 'commander';
import { EventError, exportLog, importLog, logInfo } from '../../engine/eventlog/index.ts';
import { createProgress, exitOnEpipe } from '../output/index.ts';
import { visible } from '../../lib/visible.ts';

const EXIT_CODES = `
Exit codes:
  0  ok
  1  a bad log line (located as file:line: field ...), a damaged block (log:seq: event block at seq ...),
     an unreadable, damaged or refused log (a symlink, or a path others own or can write)
  2  usage error
`;

/** runs a log command; a located error goes to stderr as one line and exits 1 */
async function guarded(f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    process.stderr.write(`krsi log: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}

export function register(program: Command): void {
  const log = program
    .command('log')
    .description('event logs: import JSON Lines into lmdb, export lmdb to JSON Lines, show what a log holds')
    .addHelpText('after', EXIT_CODES);

  log
    .command('import')
    .description('append a JSON Lines log (a file, or - for stdin) to an lmdb log (created when missing)')
    .argument('<jsonl>', 'JSON Lines file, or - for stdin')
    .argument('<log>', 'lmdb log directory')
    .option('--skip-bad', 'skip bad lines (each is reported on stderr) and count them, instead of stopping at the first')
    .addHelpText(
      'after',
      `
Every event before a bad line is committed before the import stops; events already in the log are never lost.

Resuming: the log records, with the events, the last line it took from each source file (keyed by the
file's device and inode). Importing the same file into it again reads on after that line, so an import
that stopped (a bad line, a crash, Ctrl-C) is resumed by running it again, without duplicates; a file
that grew is imported from where the last import ended. A file rewritten in place (same inode) counts as
the same file. stdin (-) is not resumable: each import of it appends.

One writer per log: an import into a log that another process is writing (krsi record, krsi run
--record, another import) is refused, naming that process; a writer that died no longer counts.
A new log is a 0700 directory of 0600 files; a log path that is a symlink, or that a user other than
root owns or can write, is refused. A failed import into a new log leaves nothing behind when it stored
no event.${EXIT_CODES}`,
    )
    .action((src: string, dst: string, opts: { skipBad?: boolean }) =>
      guarded(async () => {
        const progress = createProgress('import', 'bytes');
        try {
          const r = await importLog(src, dst, {
            skipBad: opts.skipBad,
            onBad: (e) => process.stderr.write(`skipped ${visible(e.message)}\n`),
            onProgress: (d, t) => progress.update(d, t),
          });
          progress.stop();
          const resumed = r.resumedAfter ? `; resumed after line ${r.resumedAfter}, taken by an earlier import` : '';
          process.stderr.write(`imported ${r.imported} events into ${dst} (${r.total} in the log)${r.bad ? `, ${r.bad} bad lines skipped` : ''}${resumed}\n`);
        } catch (e) {
          progress.stop();
          if (e instanceof EventError && e.file !== dst) throw new Error(`${e.message}\n(the events before line ${e.line} are committed in ${dst}; run the import again to resume after them, with --skip-bad to go on past bad lines)`);
          throw e;
        }
      }),
    );

  log
    .command('export')
    .description('write a log (lmdb or JSON Lines) as JSON Lines, the events as stored')
    .argument('<log>', 'lmdb log directory or JSON Lines file')
    .argument('[jsonl]', 'output file, or - for stdout', '-')
    .option('--since <t>', 'first event time: integer ns, or a duration after the first event (30s, 2m)')
    .option('--until <t>', 'stop before this event time: integer ns, or a duration after the first event')
    .option('--skip-bad', 'skip bad lines and damaged blocks (each is reported on stderr) and count them, instead of stopping at the first')
    .addHelpText('after', `\nThe output file is created 0600 (events hold environment values); a symlink there is refused.${EXIT_CODES}`)
    .action((src: string, dst: string, opts: { since?: string; until?: string; skipBad?: boolean }) =>
      guarded(async () => {
        if (dst === '-') exitOnEpipe();
        let bad = 0;
        const onBad = (e: Error) => (bad++, process.stderr.write(`skipped ${visible(e.message)}\n`));
        const n = await exportLog(src, dst, { since: opts.since, until: opts.until, skipBad: opts.skipBad, onBad });
        if (dst !== '-' || bad) process.stderr.write(`exported ${n} events${dst !== '-' ? ` to ${dst}` : ''}${bad ? `, ${bad} bad lines or blocks skipped` : ''}\n`);
      }),
    );

  log
    .command('info')
    .description('count, first and last ts, and events per type of a log (lmdb or JSON Lines)')
    .argument('<log>', 'lmdb log directory or JSON Lines file')
    .option('--format <fmt>', 'text or json', 'text')
    .option('--skip-bad', 'count bad lines instead of stopping at the first')
    .addHelpText('after', EXIT_CODES)
    .action((path: string, opts: { format: string; skipBad?: boolean }) =>
      guarded(async () => {
        if (opts.format !== 'text' && opts.format !== 'json') {
          process.stderr.write(`krsi log info: --format must be text or json, got ${JSON.stringify(opts.format)}\n`);
          process.exit(2);
        }
        const s = await logInfo(path, { skipBad: opts.skipBad, onBad: (e) => process.stderr.write(`skipped ${visible(e.message)}\n`) });
        if (opts.format === 'json') {
          process.stdout.write(JSON.stringify({ log: path, ...s }) + '\n');
          return;
        }
        const span = s.first_ts !== undefined && s.last_ts !== undefined ? ` (${((s.last_ts - s.first_ts) / 1e9).toFixed(3)}s)` : '';
        const lines = [
          `${path}: ${s.format === 'lmdb' ? `lmdb log (${s.version})` : 'JSON Lines'}, ${s.count} events${s.bad_lines ? `, ${s.bad_lines} bad lines` : ''}`,
          `  first ts ${s.first_ts ?? '-'}`,
          `  last ts  ${s.last_ts ?? '-'}${span}`,
          ...Object.entries(s.types)
            .sort((a, b) => b[1] - a[1])
            .map(([t, n]) => `  ${t.padEnd(12)} ${String(n).padStart(10)}`),
        ];
        process.stdout.write(lines.join('\n') + '\n');
      }),
    );
}
