// krsi record: live events from the BPF signals into an lmdb log (replayable by `krsi replay`).
// SIGINT/SIGTERM (or --duration): detach, flush the log, exit 0.
import type { Command } from 'commander';
import { LogWriter } from '../../engine/eventlog/index.ts';
import type { LiveSignals, SignalsOptions } from '../../signals/live.ts';
import { hashFailures, parseSeconds, startLive, untilStopped } from './run.ts';
import { ExeHasher, withExeHashes, type HashStats } from '../../signals/hash.ts'; // H11: exe hashing

/** records until stop resolves (default: SIGINT/SIGTERM or durationMs); returns events recorded and lost */
export async function recordLive(
  o: { log: string; /** the log already opened (the command opens it before loading programs) */ writer?: LogWriter; durationMs?: number; signals?: SignalsOptions; live?: LiveSignals; stop?: Promise<unknown>; /** H11: sha256 on exec events (default on) */ hashExe?: boolean },
): Promise<{ events: number; lost: number; hash?: HashStats }> {
  const writer = o.writer ?? LogWriter.open(o.log);
  let raw: LiveSignals;
  try {
    raw = o.live ?? (await startLive('record', o.signals ?? {}));
  } catch (e) {
    await writer.close();
    throw e;
  }
  // H11: the log carries sha256 on exec events, so replay can run any rule on it
  const hasher = o.hashExe === false ? undefined : new ExeHasher();
  const live = hasher ? withExeHashes(raw, hasher) : raw;
  let events = 0;
  let failure: unknown;
  // a write failure ends the recording (events after it would be dropped until stop)
  let fail!: (e: unknown) => void;
  const failed = new Promise<never>((_, rej) => (fail = rej));
  failed.catch(() => {});
  const sub = live.batches$.subscribe((batch) => {
    if (failure) return;
    try {
      writer.append(batch);
      events += batch.length;
    } catch (e) {
      failure = e;
      fail(e);
    }
  });
  try {
    await Promise.race([o.stop ?? untilStopped(o.durationMs), failed]);
  } finally {
    await live.stop();
    sub.unsubscribe();
    await writer.close();
  }
  if (failure) throw failure;
  return { events, lost: live.lost(), hash: hasher?.stats() };
}

export function register(program: Command): void {
  program
    .command('record')
    .description('record live events from the BPF signals into an lmdb log (replay it with krsi replay)')
    .argument('<log>', 'lmdb log directory (created, or appended to)')
    .option('--duration <s>', 'stop after this many seconds (or a duration: 500ms, 2m); default: until SIGINT/SIGTERM')
    .option('--watch-env <name...>', 'more environment variables to report on exec (8 in all, with the LD_* ones)')
    .option('--no-hash-exe', 'do not add the sha256 of the executable to exec events') // H11
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
        if (r.hash?.failed) process.stderr.write(`krsi record: ${r.hash.failed} exec events without sha256 (${hashFailures(r.hash)})\n`); // H11
      } catch (e) {
        process.stderr.write(`krsi record: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      }
      process.exit(0);
    });
}
