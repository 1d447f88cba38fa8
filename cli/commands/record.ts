// krsi record: live events from the BPF signals into an lmdb log (replayable by `krsi replay`), through
// the live pipeline's source and recorder (cli/live-runs.ts).
// SIGINT/SIGTERM (or --duration): detach, flush the log, exit 0.
import type { Command } from 'commander';
import { LogWriter } from '../../engine/eventlog/index.ts';
import { parseSeconds, startLive } from './run.ts';
import { hashFailures, recordLive } from '../live-runs.ts';

export function register(program: Command): void {
  program
    .command('record')
    .description('record live events from the BPF signals into an lmdb log (replay it with krsi replay)')
    .argument('<log>', 'lmdb log directory (created, or appended to)')
    .option('--duration <s>', 'stop after this many seconds (or a duration: 500ms, 2m); default: until SIGINT/SIGTERM')
    .option('--watch-env <name...>', 'more environment variables to report on exec (besides every LD_* and the injection-prone ones, signals/LIVE.md)')
    .option('--no-hash-exe', 'do not add the sha256 of the executable to exec events')
    .addHelpText('after', '\nNeeds root and libbpf.so.1 (Debian: libbpf1); the first run builds the BPF programs with clang.\n' +
      'Exec events carry the sha256 of the new executable (cached per file version; see krsi run --help), unless --no-hash-exe.\n')
    .action(async (log: string, opts: { duration?: string; watchEnv?: string[]; hashExe: boolean }) => {
      const durationMs = opts.duration !== undefined ? parseSeconds(opts.duration, 'record') : undefined;
      // the log first: a refused, damaged or locked log (another writer) is an error before any program loads
      let writer: LogWriter;
      try {
        writer = LogWriter.open(log);
      } catch (e) {
        process.stderr.write(`krsi record: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      }
      const live = await startLive('record', { watchEnv: opts.watchEnv });
      process.stderr.write(`krsi record: recording into ${log}${durationMs !== undefined ? ` for ${durationMs / 1000}s` : ''}; Ctrl-C stops\n`);
      try {
        const r = await recordLive({ log, writer, durationMs, live, hashExe: opts.hashExe });
        process.stderr.write(`krsi record: ${r.events} events recorded into ${log}${r.lost ? `; ${r.lost} events lost (ring buffer full)` : ''}\n`);
        if (r.hash?.failed) process.stderr.write(`krsi record: ${r.hash.failed} exec events without sha256 (${hashFailures(r.hash)})\n`);
      } catch (e) {
        process.stderr.write(`krsi record: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      }
      process.exit(0);
    });
}
