// The live side of engine/enforcement/enforcement.ts: the kernel refuses by itself and reports its own
// denied records, so check() answers nothing and only keeps the enforcer's books through exits and
// forks; apply() writes a verdict into the pinned maps; denied() names the verdict behind a record.
import type { DeniedEvent, KrsiEvent } from '../signals/events.ts';
import type { DeniedOut, Verdict } from '../engine/types.ts';
import type { Enforcement } from '../engine/enforcement/enforcement.ts';
import { childLogger } from '../lib/logger.ts';
import { quantiles, type Enforcer } from './enforcer.ts';
import { bootTimeNs } from './store.ts';

const log = childLogger('enforce');

export class KernelEnforcement implements Enforcement {
  /** ns from the triggering event's kernel time to its verdict in the map, most recent last (bounded) */
  private readonly toMap: number[] = [];

  /** set when the session closes the enforcer: nothing more reaches its maps */
  private closed = false;

  constructor(readonly enforcer: Enforcer, private readonly bootNow: () => number = bootTimeNs) {}

  close(): void {
    this.closed = true;
  }

  check(ev: KrsiEvent): undefined {
    if (this.closed) return undefined;
    // exits end pid verdicts, forks record the copies children inherit
    if (ev.type === 'exit') this.enforcer.exited(ev.pid);
    else if (ev.type === 'fork') this.enforcer.forked(ev.pid, ev.child_pid, ev.ts);
    return undefined;
  }

  apply(v: Verdict, descendants?: readonly number[]): boolean {
    if (this.closed) {
      log.warn({ verdict: v.id }, 'verdict not applied: enforcement has stopped');
      return false;
    }
    try {
      if (!this.enforcer.apply(v, descendants)) return false;
    } catch (e) {
      // one verdict the kernel cannot take (e.g. an op/subject pair it has no map for) must not stop krsi
      log.error({ verdict: v.id, err: (e as Error).message }, 'verdict not applied');
      return false;
    }
    const ns = this.bootNow() - v.ts;
    this.toMap.push(ns);
    if (this.toMap.length > 10000) this.toMap.splice(0, 5000);
    const a = this.enforcer.applyNs;
    log.info({ verdict: v.id, event_to_map_us: Math.round(ns / 1e3), apply_us: Math.round(a[a.length - 1] / 1e3) }, 'verdict applied');
    return true;
  }

  denied(ev: DeniedEvent): DeniedOut {
    return this.enforcer.deniedOut(ev);
  }

  sizes(): Record<string, number> {
    return this.enforcer.sizes();
  }

  /** the kill op's user-space SIGKILLs, by result */
  kills(): Record<string, number> {
    return { ...this.enforcer.kills };
  }

  /** ns: apply() -> map entry, and the triggering event's kernel ts -> map entry */
  latency(): { apply: ReturnType<typeof quantiles>; event_to_map: ReturnType<typeof quantiles> } {
    return { apply: this.enforcer.latency(), event_to_map: quantiles(this.toMap) };
  }
}
