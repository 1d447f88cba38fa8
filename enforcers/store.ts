// The persisted verdict store: every verdict the enforcer applies is kept in lmdb under the state dir
// (default /var/lib/krsi, or --state / KRSI_STATE_DIR), keyed by verdict id, so that a restarted krsi
// puts unexpired verdicts back into the pinned maps. Expiry is kept twice: as the kernel's
// CLOCK_BOOTTIME deadline (exact within one boot) and as wall-clock time (meaningful across a reboot,
// when boot time starts again at 0). Pid verdicts never survive a reboot: the pid is someone else's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { open, type RootDatabase, type Database } from 'lmdb';
import type { Verdict } from '../engine/types.ts';
import { UnsafePathError, checkPath, secureDir, secureFiles, type SafeOptions } from '../lib/fsafe.ts';
import { checkLmdbFile } from '../lib/lmdbfile.ts';

/** the state directory and the store: refused paths and damaged files exit 3 (a prerequisite) */
const SAFE: SafeOptions = { what: 'state directory', exitCode: 3 };

export const DEFAULT_STATE_DIR = '/var/lib/krsi';

/** --state, else KRSI_STATE_DIR, else /var/lib/krsi */
export function stateDir(flag?: string): string {
  return flag ?? process.env.KRSI_STATE_DIR ?? DEFAULT_STATE_DIR;
}

export interface StoredVerdict {
  verdict: Verdict;
  /** kernel deadline written into the map (CLOCK_BOOTTIME ns), 0 = never */
  deadline: number;
  /** wall-clock expiry (ms since the epoch), 0 = never */
  expires_wall: number;
  /** /proc/sys/kernel/random/boot_id when applied */
  boot_id: string;
  /** wall-clock time applied (ms since the epoch) */
  applied_wall: number;
  /** pid subjects: the process's start time (/proc/<pid>/stat), so a reused pid is not denied */
  proc_start?: number;
  /** a copy a child process inherited at fork (the kernel copies the parent's deny_tgid entry): the
   *  verdict it came from (its id is what the entry reports) and the op bits that verdict held */
  inherited?: { from: string; bits: number };
}

/** the current time in both clocks the store cares about */
export interface Now {
  boot: number;
  wall: number;
  bootId: string;
}

let clockGettime: ((clk: number, ts: Buffer) => number) | undefined;
const CLOCK_BOOTTIME = 7;

/** CLOCK_BOOTTIME in ns, the clock of bpf_ktime_get_boot_ns() and of live event ts */
export function bootTimeNs(): number {
  clockGettime ??= koffi.load('libc.so.6').func('int clock_gettime(int, void *)') as (clk: number, ts: Buffer) => number;
  const ts = Buffer.alloc(16);
  if (clockGettime(CLOCK_BOOTTIME, ts) !== 0) throw new Error('clock_gettime(CLOCK_BOOTTIME) failed');
  return Number(ts.readBigInt64LE(0)) * 1e9 + Number(ts.readBigInt64LE(8));
}

let cachedBootId: string | undefined;
export function bootId(): string {
  cachedBootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return cachedBootId;
}

export function now(): Now {
  return { boot: bootTimeNs(), wall: Date.now(), bootId: bootId() };
}

/** is a stored verdict expired (or meaningless) at `n`? */
export function isExpired(s: StoredVerdict, n: Now): boolean {
  if (s.boot_id !== n.bootId) {
    // another boot: pids were reused, boot-time deadlines are void; only wall-clock expiry counts
    if (s.verdict.subject.kind === 'pid') return true;
    return s.expires_wall !== 0 && s.expires_wall <= n.wall;
  }
  return s.deadline !== 0 && s.deadline <= n.boot;
}

/** the deadline a restored verdict gets in this boot: the same one in the same boot, else from wall time */
export function deadlineNow(s: StoredVerdict, n: Now): number {
  if (s.boot_id === n.bootId || s.deadline === 0) return s.deadline;
  return s.expires_wall === 0 ? 0 : n.boot + (s.expires_wall - n.wall) * 1e6;
}

export class VerdictStore {
  readonly path: string;
  /** rule name -> id (ids never change once given) */
  private readonly ruleIds = new Map<string, number>();
  private constructor(
    private readonly root: RootDatabase,
    private readonly verdicts: Database<StoredVerdict, string>,
    private readonly rules: Database<number, string>,
    path: string,
  ) {
    this.path = path;
  }

  /** opens (creating) <dir>/verdicts.mdb: the directory 0700 and the files 0600, after the path checks
   *  (lib/fsafe.ts) and, for an existing store, the file check lmdb needs (lib/lmdbfile.ts) */
  static open(dir: string): VerdictStore {
    secureDir(dir, SAFE);
    const path = join(dir, 'verdicts.mdb');
    const files = [path, `${path}-lock`];
    for (const f of files) checkPath(f, SAFE);
    try {
      if (checkPath(path, SAFE)) checkLmdbFile(path);
    } catch (e) {
      throw new UnsafePathError(`${(e as Error).message} (the verdict store; move it aside to start a new one)`, SAFE.exitCode);
    }
    const root = open({ path, maxDbs: 4, noSubdir: true, cache: false });
    secureFiles(files, SAFE);
    const verdicts = root.openDB<StoredVerdict, string>({ name: 'verdicts', encoding: 'json' });
    const rules = root.openDB<number, string>({ name: 'rules', encoding: 'json' });
    return new VerdictStore(root, verdicts, rules, path);
  }

  /** stores (or replaces) a verdict; durable when this returns */
  putSync(s: StoredVerdict): void {
    this.verdicts.putSync(s.verdict.id, s);
  }

  /** stores (or replaces) a verdict without blocking; batched, durable when the promise resolves */
  put(s: StoredVerdict): Promise<boolean> {
    return this.verdicts.put(s.verdict.id, s);
  }

  get(id: string): StoredVerdict | undefined {
    return this.verdicts.get(id);
  }

  remove(id: string): boolean {
    return this.verdicts.removeSync(id);
  }

  list(): StoredVerdict[] {
    return [...this.verdicts.getRange()].map((e) => e.value);
  }

  /** removes expired verdicts; returns them */
  prune(n: Now): StoredVerdict[] {
    const gone = this.list().filter((s) => isExpired(s, n));
    if (gone.length) this.verdicts.transactionSync(() => { for (const s of gone) this.verdicts.removeSync(s.verdict.id); });
    return gone;
  }

  /** removes every verdict; returns how many there were */
  clear(): number {
    const n = this.list().length;
    this.verdicts.clearSync();
    return n;
  }

  /** the u32 the kernel carries as rule_id for a rule name; stable across restarts (0 = none) */
  ruleId(rule: string): number {
    const cached = this.ruleIds.get(rule);
    if (cached !== undefined) return cached;
    const have = this.rules.get(rule);
    const id = have ?? this.rules.transactionSync(() => {
      const again = this.rules.get(rule);
      if (again !== undefined) return again;
      const next = ((this.rules.get('\u0000next') as number | undefined) ?? 1);
      this.rules.putSync('\u0000next', next + 1);
      this.rules.putSync(rule, next);
      return next;
    });
    this.ruleIds.set(rule, id);
    return id;
  }

  /** rule name for a kernel rule_id */
  ruleName(id: number): string | undefined {
    for (const { key, value } of this.rules.getRange()) if (value === id && key !== '\u0000next') return key;
    return undefined;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
