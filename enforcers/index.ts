// Enforcement for `krsi run`: the checks at start (fail loudly, never degrade to monitor), the
// enforcer session that applies the engine's verdicts to the pinned maps, and the kernel's denied
// events flowing back into the same output and recorded log.
import type { CompiledRuleSet } from '../engine/rules/types.ts';
import type { DeniedOut, Mode, Output, Verdict, VerdictOut } from '../engine/types.ts';
import type { DeniedEvent, FileId, KrsiEvent } from '../signals/events.ts';
import { verdictId } from '../engine/enforcement/semantics.ts';
import { childLogger } from '../lib/log.ts';
import { supported, type Support } from '../bpf/support.ts';
import { Enforcer, quantiles } from './enforcer.ts';
import { bootTimeNs } from './store.ts';
import { kernelFileId } from './maps.ts';

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
  /** every live event passes here: exits end pid verdicts, forks record the copies children inherit */
  event(ev: KrsiEvent): void;
  /** kernel denied events, as they arrive (to be recorded and pushed into the engine) */
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
  let deniedCb: ((ev: DeniedEvent) => void) | undefined;
  const early: DeniedEvent[] = [];
  let restored: number, stopRing: () => Promise<void>;
  try {
    restored = enforcer.restore();
    enforcer.configure(o.rules, o.mode);
    const stale = enforcer.reconcile();
    log.info({ restored, stale, config: enforcer.config }, 'enforcing: verdicts go into the pinned BPF-LSM maps');
    stopRing = enforcer.onDenied((ev) => (deniedCb ? deniedCb(ev) : early.push(ev)));
  } catch (e) {
    // krsi does not start: as on a clean stop, its pid loses the exemption (a later process may reuse it)
    enforcer.release();
    await enforcer.close();
    throw e;
  }
  const toMap: number[] = [];
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
    restored,
    engine: {
      simulate: false,
      deniedOut: (ev) => enforcer.deniedOut(ev),
      resolvePath: (p) => { try { return kernelFileId(p); } catch { return undefined; } },
    },
    output(out) {
      if (out.kind !== 'verdict' || !out.applied) return;
      const v = verdictOf(out);
      try {
        if (!enforcer.apply(v)) return;
      } catch (e) {
        // one verdict the kernel cannot take (e.g. an op/subject pair it has no map for) must not stop krsi
        log.error({ verdict: v.id, err: (e as Error).message }, 'verdict not applied');
        return;
      }
      const ns = bootTimeNs() - out.ts;
      toMap.push(ns);
      if (toMap.length > 10000) toMap.splice(0, 5000);
      log.info({ verdict: v.id, event_to_map_us: Math.round(ns / 1e3), apply_us: Math.round(enforcer.applyNs[enforcer.applyNs.length - 1] / 1e3) }, 'verdict applied');
    },
    event(ev) {
      if (ev.type === 'exit') enforcer.exited(ev.pid);
      else if (ev.type === 'fork') enforcer.forked(ev.pid, ev.child_pid, ev.ts);
    },
    onDenied(cb) {
      deniedCb = cb;
      for (const ev of early.splice(0)) cb(ev);
    },
    latency: () => ({ apply: enforcer.latency(), event_to_map: quantiles(toMap) }),
    async close() {
      clearInterval(sweeper);
      await stopRing();
      const l = quantiles(toMap);
      if (l.count) log.info({ verdicts: l.count, apply: enforcer.latency(), event_to_map: l }, 'verdict -> map entry latency (ns)');
      enforcer.release();
      await enforcer.close();
    },
  };
}

/** one denial, as compared between the kernel and the model */
export interface DenialKey {
  pid: number;
  op: string;
  rule: string;
  reason?: string;
}

/**
 * The differential check of a log recorded by `krsi run --mode enforce`: what the kernel denied (the
 * log's `denied` events) against what the replay model denies on the same log. Recorded events go
 * through the engine with the model simulating; an exec or module load the kernel refused never
 * happened, so its only record is the `denied` event: the model is asked about that attempt. A
 * refused mprotect is in the log (sys_enter) and the model judges the event itself.
 */
export async function deniedDifferential(
  batches: AsyncIterable<KrsiEvent[]>,
  rules: CompiledRuleSet,
): Promise<{ kernel: DenialKey[]; model: DenialKey[]; modelOnly: DeniedOut[]; deniedSeqs: number[] }> {
  const { Engine } = await import('../engine/engine.ts');
  const engine = new Engine({ rules, mode: 'enforce', simulate: true });
  const kernel: DenialKey[] = [], model: DenialKey[] = [], deniedSeqs: number[] = [];
  const byModel: DeniedOut[] = [];
  const key = (d: { pid: number; op: string; rule?: string; reason?: unknown }): DenialKey =>
    ({ pid: d.pid, op: d.op, rule: d.rule ?? '', ...(typeof d.reason === 'string' ? { reason: d.reason } : {}) });
  for await (const batch of batches) {
    for (const ev of batch) {
      if (ev.type === 'denied' && ev.op === 'tamper') continue; // self-protection: not a rule's verdict, the model has none
      if (ev.type !== 'denied') {
        engine.push(ev, (o) => { if (o.kind === 'denied') byModel.push(o); });
        continue;
      }
      if (ev.seq !== undefined) deniedSeqs.push(ev.seq);
      kernel.push(key(ev));
      const k = ev.key as { dev?: number; ino?: number };
      const base = { ts: ev.ts, pid: ev.pid, ppid: ev.ppid, uid: ev.uid, comm: ev.comm, seq: ev.seq };
      const file = typeof k.ino === 'number' ? { dev: k.dev ?? 0, ino: k.ino } : { dev: 0, ino: 0 };
      let attempt: KrsiEvent | undefined;
      if (ev.op === 'exec') attempt = { ...base, type: 'exec', exe: { path: '', ...file }, filename: '' };
      else if (ev.op === 'module_load') attempt = { ...base, type: 'module_load', exe: ev.exe, name: '', file };
      if (attempt) {
        const d = engine.model.check(attempt);
        if (d) model.push(key(d));
      }
    }
  }
  // model denials of recorded events (mprotect): each should pair with a kernel denial
  const modelOnly: DeniedOut[] = [];
  const unpaired = [...kernel.filter((k) => k.op === 'mprotect_exec')];
  for (const d of byModel) {
    const i = unpaired.findIndex((k) => k.pid === d.pid && k.op === d.op);
    if (i >= 0) { unpaired.splice(i, 1); model.push(key(d)); } else modelOnly.push(d);
  }
  const order = (a: DenialKey, b: DenialKey) => a.pid - b.pid || a.op.localeCompare(b.op) || a.rule.localeCompare(b.rule);
  return { kernel: kernel.sort(order), model: model.sort(order), modelOnly, deniedSeqs };
}
