// The wiring of live runs: `krsi run` and `krsi record` put the same pipeline on the BPF signals that
// `krsi replay` puts on a log; only the source and the sinks differ.
//   run:    signals → exe-hashes → [+ kernel denials → ts-order] → record → observe (metrics) →
//           krsiEngine (heartbeat → evaluate → summarize) → output
//   Enforcing, the engine inside `evaluate` calls the enforcer (enforcers/kernel-enforcement.ts) as it
//   calls the model in replay: exits and forks keep its books, an applied verdict goes into the maps
//   before the verdict is printed.
//   record: signals → exe-hashes → record
// Stopping (SIGINT/SIGTERM, --duration, or `stop`): the signals drain and detach, the enforcer closes
// (its last denials join the stream), the held hashes go on, the engine finishes and the summary comes
// last; the log is flushed whatever fails on the way.
import { Subject, finalize, merge, type Observable, type OperatorFunction, type Subscription } from 'rxjs';
import type { CompiledRuleSet } from '../engine/rules/types.ts';
import type { Mode, Output, SummaryOut } from '../engine/types.ts';
import type { KrsiEvent } from '../signals/events.ts';
import { needsExeHash } from '../engine/rules/reads.ts';
import { Engine } from '../engine/engine.ts';
import { unenforced } from '../engine/enforcement/enforcement.ts';
import { krsiEngine } from '../engine/pipeline.ts';
import { LogWriter } from '../engine/eventlog/index.ts';
import { startSignals, type LiveSignals, type SignalsOptions } from '../signals/live.ts';
import { bootNs } from '../signals/clock.ts';
import { ExeHasher, type HashStats } from '../signals/hash.ts';
import { exeHashes } from '../signals/exe-hashes.ts';
import { tsOrder } from '../signals/ts-order.ts';
import type { EnforceSession } from '../enforcers/index.ts';
import type { KrsiMetrics } from './metrics.ts';
import { each } from '../lib/rx/each.ts';
import { childLogger } from '../lib/logger.ts';

const log = childLogger('run');

/** resolves on the first SIGINT/SIGTERM, or after ms when given */
export function untilStopped(ms?: number): Promise<string> {
  return new Promise((resolve) => {
    const done = (why: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      if (timer) clearTimeout(timer);
      resolve(why);
    };
    const onInt = () => done('SIGINT');
    const onTerm = () => done('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    const timer = ms !== undefined ? setTimeout(() => done('duration'), ms) : undefined;
  });
}

/** "3 gone, 1 replaced" */
export function hashFailures(h: HashStats): string {
  return Object.entries(h.failures).filter(([, n]) => n).map(([k, n]) => `${n} ${k}`).join(', ');
}

const identity = <T>(x: T) => x;

/** the live source up to the recorder: signals, their exe hashes, the kernel's denials merged in ts
 *  order. `signalsDone` settles once the signals' branch has passed everything on (after stop, the
 *  batches held for their hashes included) */
export function liveEvents(live: LiveSignals, o: { hasher?: ExeHasher; denied$?: Observable<KrsiEvent[]>; writer?: LogWriter }): { events$: Observable<KrsiEvent[]>; signalsDone: Promise<void> } {
  let done!: () => void;
  const signalsDone = new Promise<void>((r) => (done = r));
  const signals = live.batches$.pipe(each('signals', identity), o.hasher ? exeHashes(o.hasher) : (identity as OperatorFunction<KrsiEvent[], KrsiEvent[]>), finalize(() => done()));
  const events = o.denied$ ? merge(signals, o.denied$).pipe(tsOrder()) : signals;
  // the recorder numbers events by their log position (seq), before the engine sees them
  return { events$: o.writer ? events.pipe(each('record', (b) => o.writer!.append(b))) : events, signalsDone };
}

/** stops in order, each step even when one before it throws; rethrows the first failure */
async function stopAll(steps: (() => unknown)[]): Promise<void> {
  let first: unknown;
  for (const s of steps) {
    try {
      await s();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== undefined) throw first;
}

/** how long stopping waits for the stages to pass on what they hold (the hashing stage holds a batch
 *  at most its deadline); past it they are dropped rather than hang the stop */
const STOP_WAIT_MS = 10_000;

/** settles with `p` or after ms, whichever first; true when `p` did */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() => clearTimeout(timer));
}

/** a live pipeline subscribed: `done` settles when it completes or fails. Stopping waits for the stages
 *  to finish after the source completed, but when stopping the source failed, or it does not complete
 *  in STOP_WAIT_MS, the pipeline is unsubscribed instead of awaited */
function runToEnd(p$: Observable<unknown>, waitMs = STOP_WAIT_MS) {
  let sub: Subscription | undefined;
  let fail!: (e: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    fail = reject;
    sub = p$.subscribe({ error: reject, complete: resolve });
  });
  done.catch(() => {});
  let sourceStopped = true;
  const drop = (why: string) => {
    sub?.unsubscribe();
    fail(new Error(`the pipeline was dropped before its summary: ${why}`));
  };
  const giveUp = (what: string) => {
    log.warn(`stopping: ${what} did not finish within ${waitMs / 1000} s; the pipeline is dropped`);
    drop(`${what} did not finish within ${waitMs / 1000} s`);
  };
  return {
    done,
    async stopSource(stop: () => Promise<void>) {
      try {
        await stop();
      } catch (e) {
        sourceStopped = false;
        drop('stopping the signals failed');
        throw e;
      }
    },
    /** waits (bounded) for `p`: a branch of the pipeline passing on what it holds */
    async settle(p: Promise<void>, what: string) {
      if (sourceStopped && !(await within(p, waitMs))) giveUp(what);
    },
    /** waits (bounded) for the stages to finish */
    async finished() {
      if (sourceStopped && !(await within(done, waitMs))) giveUp('the pipeline');
    },
  };
}

const HEARTBEAT_MS = 500;
/** the heartbeat lags CLOCK_BOOTTIME so that events still in the ring are not overtaken */
const HEARTBEAT_LAG_NS = 1e9;

export interface RunOptions {
  rules: CompiledRuleSet;
  mode?: Mode;
  /** a log path, or a log the caller opened (runLive closes it) */
  record?: string | LogWriter;
  durationMs?: number;
  signals?: SignalsOptions;
  live?: LiveSignals;
  stop?: Promise<unknown>;
  onFirstEvent?(ts: number): void;
  enforce?: EnforceSession;
  /** the events' clock (default CLOCK_BOOTTIME) */
  clock?: () => number;
  /** sha256 on exec events (default: when a rule reads it, or when recording) */
  hashExe?: boolean | ExeHasher;
  /** Prometheus metrics to feed */
  metrics?: KrsiMetrics;
  /** how long stopping waits for the stages (default 10 s) */
  stopWaitMs?: number;
}

/** runs until SIGINT/SIGTERM (or durationMs, or `stop`); every output goes to emit, the summary last */
export async function runLive(o: RunOptions, emit: (out: Output) => void, onOutput?: () => void): Promise<SummaryOut & { lost: number; hash?: HashStats }> {
  // the log first: a log that cannot be opened fails the run before any program is loaded
  const writer = typeof o.record === 'string' ? LogWriter.open(o.record) : o.record;
  let live: LiveSignals;
  try {
    live = o.live ?? (await startSignals(o.signals ?? {}));
  } catch (e) {
    await writer?.close();
    throw e;
  }
  const hashExe = o.hashExe ?? (needsExeHash(o.rules) || o.record !== undefined);
  const hasher = hashExe === true ? new ExeHasher() : hashExe || undefined;
  const enforce = o.enforce;
  // live, the kernel refuses and reports its own denied events: nothing is simulated
  const enforcement = enforce ? (o.metrics ? o.metrics.timed(enforce.enforcement) : enforce.enforcement) : unenforced();
  const engine = new Engine({ rules: o.rules, mode: o.mode, enforcement });
  o.metrics?.attach({ engine, live, hasher });
  const kills = enforce?.enforcement.kills?.bind(enforce.enforcement);
  if (kills) o.metrics?.kills(kills);
  const denied$ = enforce ? new Subject<KrsiEvent[]>() : undefined;
  const clock = o.clock ?? bootNs;
  const first = o.onFirstEvent;
  let seen = false;
  let seq = 0;
  let flushQueued = false;
  let summary: (SummaryOut & { lost: number }) | undefined;
  const source = liveEvents(live, { hasher, denied$, writer });
  const outputs$ = source.events$.pipe(
    each('observe', (b: KrsiEvent[]) => {
      if (!seen && b.length && first) (seen = true), first(b[0].ts);
      // numbered from 1, as a recording numbers them (the recorder has set seq when recording)
      for (const e of b) if (e.seq === undefined) e.seq = ++seq;
      o.metrics?.events(b);
    }),
    krsiEngine({
      engine,
      // event time also follows the clock, so an absence fires when its window has passed even if no
      // later event comes; never past events held back for their executable's hash
      heartbeat: { every: HEARTBEAT_MS, clock: () => Math.min(clock() - HEARTBEAT_LAG_NS, hasher?.heldFrom() ?? Infinity) },
      summary: { extra: () => ({ lost: live.lost() }) },
    }),
    each('output', (x: Output) => {
      // the summary is printed last, once the log is flushed
      if (x.kind === 'summary') return void (summary = x as SummaryOut & { lost: number });
      emit(x);
      if (onOutput && !flushQueued) {
        flushQueued = true;
        queueMicrotask(() => ((flushQueued = false), onOutput()));
      }
    }),
  );
  const run = runToEnd(outputs$, o.stopWaitMs);
  // only now that the pipeline listens: the denials the enforcer buffered since it started (restored
  // verdicts enforce from the first moment) reach the output and the log
  enforce?.onDenied((ev) => denied$!.next([ev]));
  try {
    await Promise.race([o.stop ?? untilStopped(o.durationMs), run.done]);
  } finally {
    // in order, each step even when one before it fails: the signals drain and detach; the batches held
    // for their hashes are evaluated while the enforcer is still open (their verdicts applied, their exits
    // and forks in its books); the enforcer closes (releasing krsi's exemption; its ring's last denials
    // join); the engine finishes; the log is flushed
    await stopAll([
      () => run.stopSource(() => live.stop()),
      () => run.settle(source.signalsDone, 'the signals and their hashes'),
      () => enforce?.close(),
      () => denied$?.complete(),
      () => run.finished(),
      () => hasher?.close(),
      () => writer?.close(),
    ]);
  }
  await run.done;
  emit(summary!);
  return hasher ? { ...summary!, hash: hasher.stats() } : summary!;
}

/** records until stop resolves (default: SIGINT/SIGTERM or durationMs); returns events recorded and lost */
export async function recordLive(o: {
  log: string;
  /** the log already opened (the command opens it before loading programs) */
  writer?: LogWriter;
  durationMs?: number;
  signals?: SignalsOptions;
  live?: LiveSignals;
  stop?: Promise<unknown>;
  /** sha256 on exec events (default on: the log carries what any rule may read) */
  hashExe?: boolean;
}): Promise<{ events: number; lost: number; hash?: HashStats }> {
  const writer = o.writer ?? LogWriter.open(o.log);
  let live: LiveSignals;
  try {
    live = o.live ?? (await startSignals(o.signals ?? {}));
  } catch (e) {
    await writer.close();
    throw e;
  }
  const hasher = o.hashExe === false ? undefined : new ExeHasher();
  let events = 0;
  const recorded$ = liveEvents(live, { hasher, writer }).events$.pipe(each('count', (b: KrsiEvent[]) => (events += b.length)));
  // a write failure ends the recording (events after it would be dropped until stop)
  const run = runToEnd(recorded$);
  try {
    await Promise.race([o.stop ?? untilStopped(o.durationMs), run.done]);
  } finally {
    await stopAll([() => run.stopSource(() => live.stop()), () => run.finished(), () => hasher?.close(), () => writer.close()]);
  }
  await run.done;
  return { events, lost: live.lost(), hash: hasher?.stats() };
}
