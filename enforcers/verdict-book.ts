// The enforcer's books: the verdict map entries as the kernel holds them (one value per key), which
// verdict set each op bit, and the stored record of every verdict applied. Several verdicts on one key
// share one map entry, merged as the model merges (semantics.ts mergeEntry: ops OR-ed, the later
// deadline, 0 = never wins, a dead entry is replaced); every change is written through at once.
import type { StoredVerdict, VerdictStore } from './store.ts';
import { mergeEntry, unsetEntry, type MergedEntry } from '../engine/enforcement/semantics.ts';
import { childLogger } from '../lib/logger.ts';
import type { KVerdict } from './maps.ts';
import type { MapWriter } from './map-writers.ts';
import { keyString, type Entry, type EntryKey } from './verdict-keys.ts';

const log = childLogger('enforcer');

export interface Cause {
  verdict: string;
  rule: string;
  ruleId: number;
}

/** one map entry: struct krsi_verdict plus which verdict set each op bit */
export interface KEntry extends MergedEntry<Cause> {
  key: EntryKey;
}

/** a verdict krsi holds: its stored record and the entry it is in */
export interface VerdictRecord {
  stored: StoredVerdict;
  key: EntryKey;
}

export function mergeKEntry(old: KEntry | undefined, key: EntryKey, bits: number, expires: number, at: number, cause: Cause): KEntry {
  return mergeEntry(old, bits, expires, at, cause, (): KEntry => ({ key, ops: 0, expires: 0, by: [undefined, undefined, undefined, undefined] }));
}

/** the value the kernel holds for an entry (rule_id: the last verdict's rule) */
export function valueOf(e: KEntry): KVerdict {
  let rule_id = 0;
  for (const c of e.by) if (c) rule_id = c.ruleId;
  return { expires: e.expires, ops: e.ops, rule_id };
}

export class VerdictBook {
  /** verdict map entries (deny_tgid, deny_inode) by keyString */
  readonly entries = new Map<string, KEntry>();
  /** by verdict id */
  readonly records = new Map<string, VerdictRecord>();
  private readonly pending = new Set<Promise<unknown>>();

  constructor(readonly store: VerdictStore, readonly maps: MapWriter) {}

  entry(key: EntryKey): KEntry | undefined {
    return this.entries.get(keyString(key));
  }

  /** a verdict's bits join the entry under key (merged), written to the map */
  put(key: EntryKey, bits: number, expires: number, at: number, cause: Cause): void {
    const k = keyString(key);
    const e = mergeKEntry(this.entries.get(k), key, bits, expires, at, cause);
    this.entries.set(k, e);
    this.maps.put(key, valueOf(e));
  }

  /** an entry as it is (a copy the kernel made), not written */
  adopt(e: KEntry): void {
    this.entries.set(keyString(e.key), e);
  }

  /** the entry leaves the books; the map keeps it (the kernel's own copy) */
  disown(key: EntryKey): void {
    this.entries.delete(keyString(key));
  }

  /** the entry leaves the books and the map */
  drop(key: EntryKey): void {
    this.entries.delete(keyString(key));
    this.maps.delete(key);
  }

  /** a verdict's bits leave its entry (only the bits it set last, as in the model); the record goes */
  unset(id: string): boolean {
    const v = this.records.get(id);
    if (!v) return false;
    this.records.delete(id);
    const k = keyString(v.key);
    const e = this.entries.get(k);
    if (!e) return true;
    const cause = v.stored.inherited?.from ?? id; // an inherited copy's bits name the parent's verdict
    unsetEntry(e, (c) => c.verdict === cause);
    this.write(k, e);
    return true;
  }

  /** writes an entry back after its bits changed: one with no bits left is deleted */
  write(k: string, e: KEntry): void {
    if (e.ops === 0) {
      this.entries.delete(k);
      this.maps.delete(e.key);
    } else this.maps.put(e.key, valueOf(e));
  }

  /** a verdict krsi now holds, stored without waiting (store false: the store has it already) */
  record(stored: StoredVerdict, key: EntryKey, store = true): void {
    this.records.set(stored.verdict.id, { stored, key });
    if (store) this.persist(this.store.put(stored));
  }

  /** a verdict krsi no longer holds (its bits stay: the caller decides) */
  forget(id: string): void {
    this.records.delete(id);
    this.store.remove(id);
  }

  /** the verdicts krsi holds on a pid's deny_tgid entry (its own and inherited copies) */
  tgidRecords(pid: number): [string, VerdictRecord][] {
    return [...this.records].filter(([, v]) => v.key.map === 'deny_tgid' && v.key.tgid === pid);
  }

  /** every verdict entry, as the maps should hold it */
  desired(): Entry[] {
    return [...this.entries.values()].map((e) => ({ key: e.key, value: valueOf(e) }));
  }

  /** waits for the store writes in flight */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private persist(p: Promise<unknown>): void {
    this.pending.add(p);
    p.then(() => this.pending.delete(p), (e) => { this.pending.delete(p); log.error({ err: e }, 'verdict store write failed'); });
  }
}
