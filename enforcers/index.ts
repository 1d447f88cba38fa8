// Enforcement for `krsi run`: the checks at start (fail loudly, never degrade to monitor), the
// enforcement session whose `enforcement` the Engine applies verdicts through (the pinned maps), and the
// kernel's denied events flowing back into the same output and recorded log. The package's front door.
import type { CompiledRuleSet } from '../engine/rules/types.ts';
import type { Mode } from '../engine/types.ts';
import type { DeniedEvent } from '../signals/events.ts';
import { childLogger } from '../lib/logger.ts';
import { supported, type Support } from '../bpf/support.ts';
import { Enforcer } from './enforcer.ts';
import { KernelEnforcement } from './kernel-enforcement.ts';

export { Enforcer, quantiles, type EnforcerOptions, type ModuleListStatus } from './enforcer.ts';
export { KernelEnforcement } from './kernel-enforcement.ts';
export { MemoryMapWriter, PinnedMapWriter, pinnedVerdictWriter, type MapWriter, type VerdictMaps } from './map-writers.ts';
export { ModuleResolver } from './module-files.ts';
export { keyString, verdictKey, kernelDeadline, type Entry, type EntryKey, type InodeMap } from './verdict-keys.ts';
export { procStart } from './lifecycle.ts';
export type { KConfig, KVerdict } from './maps.ts';
export { VerdictStore, stateDir, bootTimeNs } from './store.ts';
export { deniedDifferential, type DenialKey } from '../engine/enforcement/differential.ts';

const log = childLogger('enforce');

/** who asks for enforcement: `--mode enforce`, or enabled rules in enforce mode (no --mode) */
export function enforcementAskedBy(rules: CompiledRuleSet, mode: Mode | undefined): string[] {
  if (mode === 'enforce') return ['--mode enforce'];
  if (mode === 'monitor') return [];
  return rules.rules.filter((r) => r.mode === 'enforce' && r.source?.enabled !== false).map((r) => `rule ${r.id} (mode enforce)`);
}

/** why this host cannot enforce (naming the boot option to add), or undefined */
export function cannotEnforce(s: Support = supported()): string | undefined {
  if (s.lsmActive && s.lsmLoads) return undefined;
  const lsms = s.lsms ?? [];
  const want = `lsm=${[...lsms.filter((l) => l !== 'bpf'), 'bpf'].join(',')}`;
  const why = !s.lsmActive
    ? `BPF LSM is not active (active LSMs: ${lsms.join(',') || 'unknown'}): boot the kernel (CONFIG_BPF_LSM=y) with ${want}`
    : `BPF LSM is listed but LSM programs do not load here (${s.reasons.find((r) => r.startsWith('LSM')) ?? 'refused'}); check ${want} and CONFIG_BPF_LSM=y`;
  return why;
}

export interface EnforceSession {
  enforcer: Enforcer;
  /** what the Engine enforces through while krsi run enforces: new Engine({ rules, mode, enforcement }) */
  enforcement: KernelEnforcement;
  /** verdicts restored from the store at start */
  restored: number;
  /** kernel denied events, as they arrive (to be recorded and pushed into the engine); each carries the
   *  rule of its verdict when the enforcer knows it, so a recording names it */
  onDenied(cb: (ev: DeniedEvent) => void): void;
  /** ns: apply() -> map entry, and the triggering event's kernel ts -> map entry */
  latency(): { apply: { count: number; median_ns: number; p99_ns: number }; event_to_map: { count: number; median_ns: number; p99_ns: number } };
  close(): Promise<void>;
}

const SWEEP_MS = 60_000;

/** opens the enforcer (loads or reuses the pinned programs), restores stored verdicts, configures the
 *  kernel from the rules' kernel blocks. Throws (exit code 3) when this host cannot enforce. */
export async function startEnforcement(o: { rules: CompiledRuleSet; mode?: Mode; stateDir?: string; selfPid?: number }): Promise<EnforceSession> {
  const why = cannotEnforce();
  if (why) throw Object.assign(new Error(`cannot enforce: ${why}. Nothing would be denied, so krsi does not start (run with --mode monitor for alerts only)`), { exitCode: 3 });
  const enforcer = await Enforcer.open({ stateDir: o.stateDir, selfPid: o.selfPid ?? process.pid });
  const enforcement = new KernelEnforcement(enforcer);
  let deniedCb: ((ev: DeniedEvent) => void) | undefined;
  const early: DeniedEvent[] = [];
  let restored: number, stopRing: () => Promise<void>;
  try {
    restored = enforcer.restore();
    enforcer.configure(o.rules, o.mode);
    const stale = enforcer.reconcile();
    log.info({ restored, stale, config: enforcer.config }, 'enforcing: verdicts go into the pinned BPF-LSM maps');
    stopRing = enforcer.onDenied((ev, out) => {
      // the record names the rule the enforcer knows (the counter's and the allowlist's carry rule_id 0):
      // a replay of the recording names it too, in any mode
      if (ev.rule === undefined && ev.op !== 'tamper' && out.rule !== 'unknown') ev.rule = out.rule;
      if (deniedCb) deniedCb(ev);
      else early.push(ev);
    });
  } catch (e) {
    // krsi does not start: as on a clean stop, its pid loses the exemption (a later process may reuse it)
    enforcer.release();
    await enforcer.close();
    throw e;
  }
  // expired verdicts leave the maps (the kernel ignores them already; this frees their slots)
  const sweeper = setInterval(() => {
    try {
      const n = enforcer.sweep();
      if (n) log.info({ verdicts: n }, 'expired verdicts removed from the maps');
    } catch (e) {
      log.error({ err: (e as Error).message }, 'sweeping expired verdicts failed');
    }
  }, SWEEP_MS);
  sweeper.unref();
  return {
    enforcer,
    enforcement,
    restored,
    onDenied(cb) {
      deniedCb = cb;
      for (const ev of early.splice(0)) cb(ev);
    },
    latency: () => enforcement.latency(),
    async close() {
      clearInterval(sweeper);
      await stopRing();
      const l = enforcement.latency();
      if (l.event_to_map.count) log.info({ verdicts: l.event_to_map.count, apply: l.apply, event_to_map: l.event_to_map }, 'verdict -> map entry latency (ns)');
      enforcement.close();
      enforcer.release();
      await enforcer.close();
    },
  };
}
