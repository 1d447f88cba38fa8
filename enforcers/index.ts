// Enforcement for `krsi run`: the checks at start (fail loudly, never degrade to monitor), the
// enforcer session that applies the engine's verdicts to the pinned maps, and the kernel's denied
// events flowing back into the same output and recorded log.
import { statSync } from 'node:fs';
import type { CompiledRuleSet } from '../engine/rules/types.ts';
import type { DeniedOut, Mode, Output, Verdict, VerdictOut } from '../engine/types.ts';
import type { DeniedEvent, FileId, KrsiEvent } from '../signals/events.ts';
import { verdictId } from '../engine/enforcement/semantics.ts';
import { childLogger } from '../engine/log.ts';
import { supported, type Support } from '../bpf/support.ts';
import { Enforcer } from './enforcer.ts';
import { bootTimeNs } from './store.ts';

export { Enforcer, MemoryMapWriter, PinnedMapWriter, ModuleResolver } from './enforcer.ts';
export { VerdictStore, stateDir, bootTimeNs } from './store.ts';

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

/** the Verdict a VerdictOut stands for */
export function verdictOf(v: VerdictOut): Verdict {
  const id = (v as VerdictOut & { id?: string }).id ?? verdictId(v.rule, v.op, v.subject);
  return { id, rule: v.rule, op: v.op, subject: v.subject, ts: v.ts, ttl_ns: v.ttl_ns, expires: v.expires, mode: v.mode };
}

export interface EnforceSession {
  enforcer: Enforcer;
  /** verdicts restored from the store at start */
  restored: number;
  /** options for the Engine: the kernel refuses and reports, the model does not simulate */
  engine: { simulate: false; deniedOut: (ev: DeniedEvent) => DeniedOut | undefined; resolvePath: (p: string) => FileId | undefined };
  /** every engine output passes here first: applied verdicts go into the maps */
  output(out: Output): void;
  /** every live event passes here: exits end pid verdicts */
  event(ev: KrsiEvent): void;
  /** kernel denied events, as they arrive (to be recorded and pushed into the engine) */
  onDenied(cb: (ev: DeniedEvent) => void): void;
  /** ns: apply() -> map entry, and the triggering event's kernel ts -> map entry */
  latency(): { apply: { count: number; median_ns: number; p99_ns: number }; event_to_map: { count: number; median_ns: number; p99_ns: number } };
  close(): Promise<void>;
}

function quantiles(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(f * s.length))] : 0);
  return { count: s.length, median_ns: q(0.5), p99_ns: q(0.99) };
}

/** opens the enforcer (loads or reuses the pinned programs), restores stored verdicts, configures the
 *  kernel from the rules' kernel blocks. Throws (exit code 3) when this host cannot enforce. */
export async function startEnforcement(o: { rules: CompiledRuleSet; mode?: Mode; stateDir?: string; selfPid?: number }): Promise<EnforceSession> {
  const why = cannotEnforce();
  if (why) throw Object.assign(new Error(`cannot enforce: ${why}. Nothing would be denied, so krsi does not start (run with --mode monitor for alerts only)`), { exitCode: 3 });
  const enforcer = await Enforcer.open({ stateDir: o.stateDir, selfPid: o.selfPid ?? process.pid });
  const restored = enforcer.restore();
  enforcer.configure(o.rules, o.mode);
  log.info({ restored, config: enforcer.config }, 'enforcing: verdicts go into the pinned BPF-LSM maps');
  const toMap: number[] = [];
  let deniedCb: ((ev: DeniedEvent) => void) | undefined;
  const early: DeniedEvent[] = [];
  const stopRing = enforcer.onDenied((ev) => (deniedCb ? deniedCb(ev) : early.push(ev)));
  return {
    enforcer,
    restored,
    engine: {
      simulate: false,
      deniedOut: (ev) => enforcer.deniedOut(ev),
      resolvePath: (p) => { try { const st = statSync(p); return { dev: st.dev, ino: st.ino }; } catch { return undefined; } },
    },
    output(out) {
      if (out.kind !== 'verdict' || !out.applied) return;
      if (enforcer.apply(verdictOf(out))) {
        toMap.push(bootTimeNs() - out.ts);
        if (toMap.length > 10000) toMap.splice(0, 5000);
      }
    },
    event(ev) {
      if (ev.type === 'exit') enforcer.exited(ev.pid);
    },
    onDenied(cb) {
      deniedCb = cb;
      for (const ev of early.splice(0)) cb(ev);
    },
    latency: () => ({ apply: enforcer.latency(), event_to_map: quantiles(toMap) }),
    async close() {
      await stopRing();
      const l = quantiles(toMap);
      if (l.count) log.info({ verdicts: l.count, apply: enforcer.latency(), event_to_map: l }, 'verdict -> map entry latency (ns)');
      await enforcer.close();
    },
  };
}
