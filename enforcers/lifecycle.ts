// Processes come and go under the enforcer's verdicts (the SEMANTICS lifecycle rows). The kernel does
// the work itself: enforce.bpf.c krsi_exit clears a tgid's deny_tgid entry, krsi_fork copies the
// parent's live entry to a new process. Here the enforcer's books follow: an exit ends the pid's
// verdicts; a fork records the copy the child inherited (store: `inherited`), so that list, restore and
// reconcile know it and removing the parent's verdict lifts it; a copy made while krsi was down is
// adopted at start while its process lives.
import { readFileSync } from 'node:fs';
import type { VerdictOp } from '../engine/types.ts';
import { BIT_INDEX, KRSI_OP, live } from '../engine/enforcement/semantics.ts';
import { exempt } from '../engine/enforcement/enforcement.ts';
import { childLogger } from '../lib/logger.ts';
import type { KVerdict } from './maps.ts';
import type { Now, StoredVerdict } from './store.ts';
import type { EntryKey } from './verdict-keys.ts';
import type { KEntry, VerdictBook } from './verdict-book.ts';
import { startNs } from './kill.ts';

const log = childLogger('enforcer');

/** every bit a tgid verdict can hold */
const VERDICT_BITS = KRSI_OP.QUARANTINE | KRSI_OP.KILL;

/** /proc/<pid>/stat starttime (clock ticks since boot), or undefined when the process is gone */
export function procStart(pid: number): number | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

export interface LifecycleOptions {
  selfPid: number;
  clock: () => Now;
  /** a process's start time, to tell it from a later one with the same pid */
  procStart: (pid: number) => number | undefined;
  /** a process's start, ns since boot (default /proc/PID/stat) */
  startNs?: (pid: number) => number | undefined;
}

export class Lifecycle {
  /** set by forked() when it wrote the child's entry itself (the fork raced the verdict's write): its ops
   *  and the verdict, for the enforcer's kill */
  late?: { ops: number; verdict: string };

  constructor(private readonly book: VerdictBook, private readonly o: LifecycleOptions) {}

  /** a process exited: its pid verdicts end with it. The kernel clears deny_tgid on exit itself, but an
   *  apply() that wrote the entry after that (the process exited between procStart() and the write, or
   *  was a zombie already) would leave it for whichever process reuses the pid: delete it here too */
  exited(pid: number): void {
    const e = this.book.entry({ map: 'deny_tgid', tgid: pid });
    if (!e) return;
    this.book.drop(e.key);
    for (const [id] of this.book.tgidRecords(pid)) this.book.forget(id);
  }

  /** a process forked: the kernel (krsi_fork) already copied the parent's live deny_tgid entry to the
   *  child; record the copy (entries and store). Returns how many inherited verdicts the child got. */
  forked(parent: number, child: number, at = this.o.clock().boot): number {
    if (child === parent) return 0; // a thread of the same process
    const e = this.book.entry({ map: 'deny_tgid', tgid: parent });
    const copied = e !== undefined && e.ops !== 0 && live(e.expires, at) && !exempt(parent, this.o.selfPid);
    this.forgetStale(child, copied);
    if (!copied) return 0;
    const start = this.o.procStart(child);
    if (start === undefined) return 0; // already gone: the kernel's copy went with it
    const key: EntryKey = { map: 'deny_tgid', tgid: child };
    const inKernel = this.book.maps.get(key);
    if (!inKernel) {
      // no copy: the fork came before the parent's entry reached the map (between the verdict's event and
      // its write: the kernel had nothing to copy). The child is covered now, unless its pid is already
      // another process's (started after the fork)
      const born = (this.o.startNs ?? startNs)(child);
      if (born === undefined || born > at + 10_000_000) return 0;
      this.book.put(key, e.ops, e.expires, at, e.by.find((c) => c !== undefined)!);
      const entry = this.book.entry(key)!;
      entry.by = [...e.by];
      this.late = { ops: e.ops, verdict: e.by.find((c) => c !== undefined)!.verdict };
    } else if (inKernel.ops !== e.ops || inKernel.expires !== e.expires) return 0;
    // as the kernel does: the child's entry is the parent's value (a new tgid has no entry of its own);
    // not written to the map: the kernel already did, and a write after a fast child's exit would leave
    // an entry for a pid the next process may reuse
    else this.book.adopt({ key, ops: e.ops, expires: e.expires, by: [...e.by] });
    const wall = this.o.clock();
    // one stored record per verdict the parent's entry holds (its bits), keyed by child
    const byVerdict = new Map<string, number>();
    for (const [bit, i] of BIT_INDEX) {
      const c = e.by[i];
      if (c && e.ops & bit) byVerdict.set(c.verdict, (byVerdict.get(c.verdict) ?? 0) | bit);
    }
    let n = 0;
    for (const [from, bits] of byVerdict) {
      const src = this.book.records.get(from) ?? [...this.book.records.values()].find((v) => v.stored.inherited?.from === from);
      if (!src) continue; // a kernel:* cause (never on deny_tgid) or unknown
      this.book.record({
        ...src.stored,
        verdict: { ...src.stored.verdict, id: `${from}@pid:${child}`, subject: { kind: 'pid', pid: child } },
        deadline: e.expires,
        expires_wall: e.expires === 0 ? 0 : wall.wall + Math.ceil((e.expires - wall.boot) / 1e6),
        applied_wall: wall.wall,
        proc_start: start,
        inherited: { from, bits },
      }, key);
      n++;
    }
    return n;
  }

  /** a live deny_tgid entry the enforcer does not know, on a running process: a copy the kernel made at
   *  a fork while krsi was down (or a verdict from before a lost store). Kept, recorded as its own
   *  inherited verdict (`krsi verdicts rm/clear` lift it; it ends with the process or its TTL). */
  adopt(tgid: number, value: KVerdict, n: Now): boolean {
    if (exempt(tgid, this.o.selfPid) || value.ops === 0 || !live(value.expires, n.boot)) return false;
    const start = this.o.procStart(tgid);
    if (start === undefined) return false;
    const id = `kernel:inherited@pid:${tgid}`;
    const rule = (value.rule_id ? this.book.store.ruleName(value.rule_id) : undefined) ?? 'unknown';
    const op: VerdictOp = value.ops === KRSI_OP.EXEC ? 'exec' : value.ops === KRSI_OP.MPROTECT_EXEC ? 'mprotect_exec' : value.ops === KRSI_OP.MODULE_LOAD ? 'module_load' : value.ops === KRSI_OP.KILL ? 'kill' : 'quarantine';
    const key: EntryKey = { map: 'deny_tgid', tgid };
    const ttl = value.expires === 0 ? 0 : value.expires - n.boot;
    const stored: StoredVerdict = {
      verdict: { id, rule, op, subject: { kind: 'pid', pid: tgid }, ts: n.boot, ttl_ns: ttl, expires: value.expires, mode: 'enforce' },
      deadline: value.expires, expires_wall: value.expires === 0 ? 0 : n.wall + Math.ceil(ttl / 1e6), boot_id: n.bootId, applied_wall: n.wall,
      proc_start: start, inherited: { from: id, bits: value.ops & VERDICT_BITS },
    };
    const cause = { verdict: id, rule, ruleId: value.rule_id };
    const entry: KEntry = { key, ops: value.ops & VERDICT_BITS, expires: value.expires, by: BIT_INDEX.map(([bit]) => (value.ops & bit ? cause : undefined)) };
    this.book.adopt(entry);
    this.book.record(stored, key);
    log.info({ pid: tgid, rule, ops: value.ops }, 'kept a deny_tgid entry krsi did not know (inherited at a fork while krsi was down)');
    return true;
  }

  /** the child of a fork is a new process: records krsi still holds under its pid are from a process
   *  whose exit krsi did not see (lost with a full ring buffer), unless they were applied to the new
   *  process itself (its fork event came late: same process start time). The kernel's exit program
   *  cleared the dead process's entry; the map now holds the copy krsi_fork made from the parent, or,
   *  when the parent has none, an entry krsi wrote after that exit (a zombie): deleted then. */
  private forgetStale(pid: number, parentLive: boolean): void {
    const key: EntryKey = { map: 'deny_tgid', tgid: pid };
    if (!this.book.entry(key)) return;
    const start = this.o.procStart(pid);
    const stale = this.book.tgidRecords(pid).filter(([, v]) => start === undefined || v.stored.proc_start !== start);
    if (stale.length === 0) return;
    if (parentLive) {
      // the map holds krsi_fork's copy of the parent's entry: the kernel's to keep; the books drop the
      // dead process's records (forked() then records the copy)
      for (const [id] of stale) this.book.forget(id);
      this.book.disown(key);
      return;
    }
    // no copy: the entry is krsi's own; its stale bits leave the map, the new process's own stay
    for (const [id] of stale) {
      this.book.unset(id);
      this.book.store.remove(id);
    }
  }
}
