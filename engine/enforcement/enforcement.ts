// The one interface between the engine and enforcement. Replay: the model of the kernel's programs
// (model.ts). Live: the enforcer, which writes the pinned maps (enforcers/kernel-enforcement.ts). The
// engine calls check, apply and denied, and nothing else.
import type { DeniedEvent, KrsiEvent } from '../../signals/events.ts';
import type { DeniedOut, Verdict } from '../types.ts';
import { attributeDenied } from './denied.ts';

export interface Enforcement {
  /** every non-denied event once, in order: the denial the kernel's hook would return (the replay model), or undefined (live: the kernel already decided and reports its own denied events); also the lifecycle rows (exit clears the tgid's state, fork copies it) */
  check(ev: KrsiEvent): DeniedOut | undefined;
  /** a verdict whose effective mode is enforce; returns whether it took effect (false: exempt pid, unresolvable subject, ...).
   *  A pid verdict also covers `descendants`: the live processes forked from that pid which the process table knows
   *  (forked before the verdict; the kernel copies the entry to later forks itself) */
  apply(v: Verdict, descendants?: readonly number[]): boolean;
  /** a `denied` event (live from the kernel's ring, or read back from a recorded log): what to report, or undefined when it is already reported */
  denied(ev: DeniedEvent): DeniedOut | undefined;
  /** sizes for stats/metrics */
  sizes(): Record<string, number>;
}

/** pid 1 and krsi's own tgid are never denied and never get a pid verdict (bpf/lsm.h has the kernel's
 *  copy: config.krsi_tgid) */
export function exempt(pid: number, self: number): boolean {
  return pid === 1 || pid === self;
}

/** live without enforcement: nothing is refused or applied; a `denied` event (programs left pinned by
 *  an earlier run) is reported as its record names it */
export function unenforced(): Enforcement {
  return {
    check: () => undefined,
    apply: () => false,
    denied: (ev) => attributeDenied(ev),
    sizes: () => ({}),
  };
}
