// krsi run: the rules on live events: the BPF signals through the pipeline replay uses (cli/live-runs.ts),
// into the same output (text, or the JSON Lines objects of `krsi replay --format json`); --record also
// writes the events into an lmdb log that `krsi replay` reproduces. SIGINT/SIGTERM: detach, flush the
// log, exit 0.
import { Option, type Command } from 'commander';
import type { CompiledRuleSet } from '../../engine/rules/types.ts';
import type { Mode } from '../../engine/types.ts';
import { BUNDLED_RULES_DIR, RuleLoadError, formatIssue, loadRuleDirs } from '../../engine/rules/load.ts';
import { LogWriter } from '../../engine/eventlog/index.ts';
import { OutputSink, type Format } from '../output/index.ts';
import { UnknownRuleError, selectRules } from '../../engine/rules/select.ts';
import { parseDuration } from '../../lib/duration.ts';
import { startSignals, type LiveSignals, type SignalsOptions } from '../../signals/live.ts';
import { enforcementAskedBy, startEnforcement, type EnforceSession } from '../../enforcers/index.ts';
import { hashFailures, runLive, untilStopped } from '../live-runs.ts';
import { KrsiMetrics, parseListen, serveMetrics } from '../metrics.ts';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { startProtection, type ProtectHandle } from '../../enforcers/protect.ts';
import { serveControl, type ControlServer } from '../../enforcers/control.ts';

/** exit codes (cli/main.ts): 1 rule errors, 2 usage, 3 missing prerequisite */
export const EXIT_PREREQ = 3;

function fail(cmd: string, msg: string, code: number): never {
  process.stderr.write(`krsi ${cmd}: ${msg}\n`);
  process.exit(code);
}

/** --duration: seconds ("10", "2.5") or a duration ("500ms", "2m"); returns ms */
export function parseSeconds(s: string, cmd: string): number {
  if (/^[0-9]+(\.[0-9]+)?$/.test(s)) return Number(s) * 1000;
  try {
    return parseDuration(s) / 1e6;
  } catch (e) {
    fail(cmd, `--duration: ${(e as Error).message}`, 2);
  }
}

/** startSignals with the prerequisite failures (not root, no libbpf.so.1, no clang) as clear exits */
export async function startLive(cmd: string, o: SignalsOptions): Promise<LiveSignals> {
  try {
    return await startSignals(o);
  } catch (e) {
    const err = e as Error & { exitCode?: number };
    // BpfPrereqError / BuildError carry exitCode 3 and a message naming the package to install
    fail(cmd, err.message.replace(/^krsi: /, ''), err.exitCode ?? 1);
  }
}

interface CliOptions {
  rules?: string[];
  rule?: string[];
  mode?: Mode;
  record?: string;
  format: Format;
  duration?: string;
  watchEnv?: string[];
  state?: string;
  metrics?: string;
  selfProtect: boolean;
  allowStopFrom?: string[];
}

// --mode enforce, or enabled rules in enforce mode, open the enforcer: verdicts go into the pinned
// BPF-LSM maps, the kernel's denied events come back into the output and the log. A host that cannot
// enforce (no BPF LSM) fails at start with exit 3, naming the boot option: never silently monitor.
async function openEnforcement(rules: CompiledRuleSet, mode: Mode | undefined, stateDir?: string): Promise<EnforceSession | undefined> {
  const asked = enforcementAskedBy(rules, mode);
  if (!asked.length) return undefined;
  try {
    return await startEnforcement({ rules, mode, stateDir });
  } catch (e) {
    const err = e as Error & { exitCode?: number };
    fail('run', `${err.message.replace(/^krsi: /, '')}\n(enforcement asked for by ${asked.join(', ')})`, err.exitCode ?? EXIT_PREREQ);
  }
}

// Self-protection (enforcers/protect.ts, enforcers/control.ts): while enforcing, krsi serves the control
// socket `krsi verdicts` talks to, then (unless --no-self-protect) attaches the programs that refuse others
// its maps, links, pins and ptrace. A failure stops krsi before it runs: never enforcing unprotected unasked.
async function openGuard(enforce: EnforceSession, o: CliOptions, undo: () => Promise<void>): Promise<{ protect?: ProtectHandle; close(): Promise<void> }> {
  let control: ControlServer | undefined;
  let protect: ProtectHandle | undefined;
  try {
    control = await serveControl(enforce.enforcer);
    if (o.selfProtect) protect = startProtection({ allowStopFrom: o.allowStopFrom, paths: [control.path, dirname(control.path)] });
  } catch (e) {
    await control?.close();
    await undo();
    const why = (e as Error).message.replace(/^krsi: /, '');
    fail('run', o.selfProtect && control ? `self-protection unavailable: ${why}\n(krsi run --no-self-protect enforces without it)` : why, (e as { exitCode?: number }).exitCode ?? EXIT_PREREQ);
  }
  return {
    protect,
    async close() {
      protect?.close();
      await control?.close();
    },
  };
}

const HELP = `
Loads the signal programs (exec, fork, exit, unlink, mprotect, module load and unload where the kernel has
modules) and runs the rules on what happens on this host, as \`krsi replay\` does on a log. Needs root,
libbpf.so.1 (Debian: libbpf1) and, for the first build of the BPF programs, clang and libbpf-dev.

--format json prints the JSON Lines objects of \`krsi replay --format json\` (alert, verdict,
denied, and the summary last, with "lost": events the kernel could not hand over).
--record LOG also writes every event into the lmdb log LOG: \`krsi replay LOG\` gives the same alerts.
--mode enforce (or enabled rules in enforce mode) loads the BPF-LSM enforcement programs, pinned under
/sys/fs/bpf/krsi/enforce/, restores the stored verdicts (--state) and applies every verdict: the kernel
then refuses with EPERM and its \`denied\` events join the output and the log. It needs a kernel with
CONFIG_BPF_LSM=y booted with bpf in lsm= (e.g. lsm=lockdown,capability,landlock,yama,apparmor,bpf);
without it krsi run exits 3 saying so, and never runs as monitor instead. See \`krsi verdicts\`.

Exec events carry the sha256 of the executable when a loaded rule reads \`sha256\` on exec (the bundled
known-vulnerable-binary does) or with --record: hashed once per file version (dev, inode, size, mtime,
ctime; 4096 cached), read through /proc/PID/exe while the process lives, else its path, in a child
process (a file whose reads never return stalls only that process, which is replaced); files over 256 MiB
are not hashed. The events keep their order; an exec event waits at most 250 ms for its hash. One that
gets none carries sha256_error (gone, replaced, too_large, unreadable, timeout, queue_full, unavailable),
which rules can read; the count is printed.

--metrics PORT (127.0.0.1:PORT) or HOST:PORT (off by default) serves Prometheus metrics at /metrics, with
no authentication: an address other hosts can reach is used only when given, with a warning. It exposes
counts and sizes, no event data (no paths, argv, env, pids):
krsi_events_total{type}, krsi_events_lost_total{kind}, krsi_alerts_total / krsi_verdicts_total /
krsi_denied_total / krsi_rule_errors_total{rule}, krsi_process_table_entries, krsi_correlation_keys{rule},
krsi_correlation_evictions_total{rule}, krsi_process_table_evictions_total, krsi_ringbuf_records_total,
krsi_ringbuf_handler_errors_total, krsi_verdict_apply_seconds and krsi_verdict_event_to_map_seconds
(histograms, when enforcing), krsi_exe_hash_cache_hits_total / _misses_total / krsi_exe_hash_failures_total{reason},
and the Node process metrics. Port 0 picks a free port; the URL is printed on stderr.

Self-protection (enforce mode; --no-self-protect turns it off): while krsi run enforces, BPF-LSM programs
refuse every other process (root included; pid 1 excepted) an fd on krsi's maps (bpftool map dump/update
too), detaching or replacing its links, removing or moving its pins under /sys/fs/bpf/krsi and its control
socket, unmounting that bpffs, and ptrace / process_vm_writev / /proc/PID/mem on krsi; each attempt is a
\`denied\` output with op "tamper" and counted (krsi_tamper_total). A signal that can stop krsi (SIGTERM,
SIGKILL, SIGSTOP, ...) is reported the same way (enforced false) but never refused, unless it comes from
pid 1 or an executable named by --allow-stop-from PATH. \`krsi verdicts add|rm|clear|list\` go through
krsi's control socket /run/krsi/control.sock (0700 directory, root only) and this process applies them.
Protection lasts as long as this process: it is not pinned.

Stops on SIGINT/SIGTERM (or after --duration): detaches, flushes the log, prints the summary, exits 0.
`;

export function register(program: Command): void {
  program
    .command('run')
    .description('run the rules on live events from BPF signals: alerts and verdicts as they happen')
    .option('--rules <dir...>', 'rule files or directories of *.json (default: the bundled rules)')
    .option('--rule <id...>', 'only these rules')
    .addOption(new Option('--mode <mode>', 'override every rule mode').choices(['monitor', 'enforce']))
    .option('--record <log>', 'also record the events into this lmdb log')
    .addOption(new Option('--format <fmt>', 'output format').choices(['text', 'json']).default('text'))
    .option('--duration <s>', 'stop after this many seconds (or a duration: 500ms, 2m)')
    .option('--state <dir>', 'enforce: verdict store directory (default $KRSI_STATE_DIR or /var/lib/krsi)')
    .option('--watch-env <name...>', 'more environment variables to report on exec (besides every LD_* and the injection-prone ones, signals/LIVE.md)')
    .option('--no-self-protect', 'enforce mode: do not refuse other processes krsi\'s maps, links, pins and ptrace (see below)')
    .option('--allow-stop-from <exe...>', 'enforce mode: signals from these executables stop krsi unreported (pid 1 always may)')
    .option('--metrics <[host:]port>', 'serve Prometheus metrics at http://127.0.0.1:PORT/metrics (HOST: another address, unauthenticated)')
    .addHelpText('after', HELP)
    .action(async (opts: CliOptions) => {
      const durationMs = opts.duration !== undefined ? parseSeconds(opts.duration, 'run') : undefined;
      if (opts.metrics !== undefined) try { parseListen(opts.metrics); } catch (e) { fail('run', (e as Error).message, 2); }
      let rules: CompiledRuleSet;
      try {
        rules = await loadRuleDirs(opts.rules?.length ? opts.rules : [BUNDLED_RULES_DIR]);
      } catch (e) {
        if (!(e instanceof RuleLoadError)) throw e;
        for (const i of e.issues) process.stderr.write(formatIssue(i) + '\n');
        const n = e.issues.filter((i) => i.severity === 'error').length;
        fail('run', `${n} rule error${n === 1 ? '' : 's'}; nothing run`, 1);
      }
      if (opts.rule?.length) {
        try {
          rules = selectRules(rules, opts.rule);
        } catch (e) {
          if (!(e instanceof UnknownRuleError)) throw e;
          fail('run', `--rule: ${e.message}`, 2);
        }
      }
      // the log before anything is loaded or exempted: a bad --record path fails here, with nothing to undo
      let writer: LogWriter | undefined;
      if (opts.record) {
        try {
          writer = LogWriter.open(opts.record);
        } catch (e) {
          fail('run', `--record: ${(e as Error).message}`, 1);
        }
      }
      for (const p of opts.allowStopFrom ?? []) if (!existsSync(p)) fail('run', `--allow-stop-from ${p}: no such file`, 2);
      const enforce = await openEnforcement(rules, opts.mode, opts.state);

      // the metrics server before the signals, so a bad address fails before anything is loaded
      const metrics = opts.metrics !== undefined ? new KrsiMetrics() : undefined;
      const server = metrics && (await serveMetrics(metrics, opts.metrics!).catch((e: Error) => fail('run', e.message.startsWith('--metrics') ? e.message : `--metrics ${opts.metrics}: ${e.message}`, 2)));
      // the warning first, in the same write: whoever reads up to the URL has read it
      const exposed = server?.exposed ? `krsi run: warning: the metrics endpoint is unauthenticated and ${opts.metrics} is reachable from other hosts: anyone there reads rule ids, event and alert counts and process metrics (a bare port binds 127.0.0.1)\n` : '';
      if (server) process.stderr.write(`${exposed}krsi run: metrics on ${server.url}\n`);

      const live = await startLive('run', { watchEnv: opts.watchEnv });
      // self-protection last: every map and link krsi holds (enforcement, signals) is known by now
      const guard = enforce ? await openGuard(enforce, opts, async () => { await live.stop(); await enforce.close(); }) : undefined;
      if (guard?.protect) metrics?.tamper(() => guard.protect!.counts());
      const sink = new OutputSink(opts.format);
      // a reader that went away (`krsi run | head`) stops the run in order: signals detached, the log
      // flushed, the exemption released; what is left to print goes nowhere
      let outputGone!: (why: string) => void;
      const gone = new Promise<string>((r) => (outputGone = r));
      process.stdout.on('error', (e: NodeJS.ErrnoException) => outputGone(e.code ?? 'stdout error'));
      try {
        const s = await runLive(
          { rules, mode: opts.mode, record: writer, stop: Promise.race([untilStopped(durationMs), gone]), live, onFirstEvent: (ts) => (sink.ctx.t0 = ts), enforce, metrics },
          sink.write,
          () => void sink.drain().catch(() => {}),
        );
        await server?.close();
        await guard?.close();
        if (s.lost) process.stderr.write(`krsi run: ${s.lost} events lost (ring buffer full)\n`);
        if (s.hash?.failed) process.stderr.write(`krsi run: ${s.hash.failed} exec events without sha256 (${hashFailures(s.hash)})\n`);
        if (opts.record) process.stderr.write(`krsi run: recorded ${s.events} events to ${opts.record}\n`);
      } catch (e) {
        await sink.end();
        fail('run', e instanceof Error ? e.message : String(e), 1);
      }
      await sink.end();
      process.exit(0);
    });
}
