// One table, run through both implementations of krsi's enforcement state: the replay model's maps
// (engine/enforcement/model.ts) and the map entries the live enforcer writes (enforcers/enforcer.ts),
// the latter read as bpf/enforce.bpf.c reads them (by inode, module lists by file, rule_id only); both
// through the hooks of the SEMANTICS rows (engine/enforcement/hooks.ts). Every row also states the
// expected answer, so a bug shared by both fails.
// The in-VM tests (test/vm/e2e.test.ts) check the kernel itself on the same scenarios.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnforcementModel } from '../../engine/enforcement/model.ts';
import { KRSI_CFG, KRSI_OP, KRSI_MODULE_MODE, MODULE_REFUSAL_NS, SEMANTICS, live, verdictId, type DenyReason } from '../../engine/enforcement/semantics.ts';
import { Hooks, type MapsView } from '../../engine/enforcement/hooks.ts';
import { Enforcer, MemoryMapWriter, keyString, ModuleResolver, type EntryKey } from '../../enforcers/index.ts';
import { VerdictStore } from '../../enforcers/store.ts';
import type { CompiledRuleSet, CompiledRule, KernelJson } from '../../engine/rules/types.ts';
import type { DeniedOut, Mode, Subject, Verdict, VerdictOp } from '../../engine/types.ts';
import type { DeniedEvent, KrsiEvent } from '../../signals/events.ts';

const dir = mkdtempSync(join(tmpdir(), 'krsi-sem-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const SELF = 999;

// files for deny_exec_paths (resolved by stat) and fake module files (resolved by the resolver)
const vulnPath = join(dir, 'vuln-bin');
writeFileSync(vulnPath, 'x');
const vuln = statSync(vulnPath);
const MODS: Record<string, { dev: number; ino: number }> = {
  dummy: { dev: 2049, ino: 5001 },
  evil: { dev: 2049, ino: 5002 },
  good: { dev: 2049, ino: 5003 },
};
const modules = { dir: '/fake/modules', inode: (n: string) => (MODS[n] ? { ...MODS[n], path: `/fake/${n}.ko` } : undefined) } as unknown as ModuleResolver;

type Step =
  | { apply: { rule?: string; op: VerdictOp; subject: Subject; ts: number; ttl?: number } }
  | { remove: string }
  | { ev: KrsiEvent; deny?: { reason: DenyReason; verdict: string } };

interface Row {
  name: string;
  kernel?: KernelJson & { lists?: Record<string, string[]>; mode?: Mode };
  steps: Step[];
}

let tsCounter = 1000;
function ev(type: KrsiEvent['type'], pid: number, extra: Record<string, unknown> = {}, ts?: number): KrsiEvent {
  return { ts: ts ?? (tsCounter += 10), type, pid, ppid: 1, uid: 0, comm: 't', exe: { path: '/bin/t', dev: 1, ino: 1 }, ...extra } as KrsiEvent;
}
const exec = (pid: number, exe = { path: '/bin/t', dev: 1, ino: 1 }, ts?: number) => ev('exec', pid, { filename: exe.path, exe }, ts);
const mprot = (pid: number, prot: number, ts?: number) => ev('mprotect', pid, { start: 0, len: 4096, prot }, ts);
/** a W->X flip: written memory made executable, write dropped */
const flip = (pid: number, ts?: number) => ev('mprotect', pid, { start: 0, len: 4096, prot: 5, wx: true, flip: true }, ts);
const mmapx = (pid: number, prot: number, ts?: number) => ev('mmap', pid, { start: 0, len: 4096, prot, flags: 0x22, anon: true }, ts);
const modload = (pid: number, name: string, ts?: number) => ev('module_load', pid, { name, file: MODS[name] }, ts);
/** init_module from memory: a module_load without `file` */
const memload = (pid: number, name: string, ts?: number) => ev('module_load', pid, { name }, ts);
const vid = (rule: string, op: VerdictOp, s: Subject) => verdictId(rule, op, s);
const P = (pid: number): Subject => ({ kind: 'pid', pid });
const I = (dev: number, ino: number): Subject => ({ kind: 'inode', dev, ino });

const ROWS: Row[] = [
  {
    name: 'exec verdict on an inode denies that binary, not another inode',
    steps: [
      { apply: { op: 'exec', subject: I(7, 70), ts: 100 } },
      { ev: exec(50, { path: '/x', dev: 7, ino: 70 }), deny: { reason: 'INODE', verdict: vid('r', 'exec', I(7, 70)) } },
      { ev: exec(50, { path: '/x-copy', dev: 7, ino: 71 }) },
    ],
  },
  {
    name: 'exec verdict on a pid denies its next exec, not another process',
    steps: [
      { apply: { op: 'exec', subject: P(60), ts: 100 } },
      { ev: exec(60), deny: { reason: 'TGID', verdict: vid('r', 'exec', P(60)) } },
      { ev: exec(61) },
      { ev: mprot(60, 7) },
    ],
  },
  {
    name: 'quarantine denies exec, W+X mprotect and module load of one process',
    kernel: { module_allowlist: 'allowed', lists: { allowed: ['dummy', 'good'] } },
    steps: [
      { apply: { op: 'quarantine', subject: P(70), ts: 100 } },
      { ev: exec(70), deny: { reason: 'TGID', verdict: vid('r', 'quarantine', P(70)) } },
      { ev: mprot(70, 7), deny: { reason: 'TGID', verdict: vid('r', 'quarantine', P(70)) } },
      { ev: mprot(70, 3) },
      { ev: modload(70, 'dummy'), deny: { reason: 'TGID', verdict: vid('r', 'quarantine', P(70)) } },
      { ev: modload(71, 'dummy') },
    ],
  },
  {
    name: 'mprotect_exec verdict denies only PROT_EXEC requests',
    steps: [
      { apply: { op: 'mprotect_exec', subject: P(80), ts: 100 } },
      { ev: mprot(80, 1) },
      { ev: mprot(80, 5), deny: { reason: 'TGID', verdict: vid('r', 'mprotect_exec', P(80)) } },
      { ev: exec(80) },
    ],
  },
  {
    name: 'the in-kernel counter counts W->X flips only: the flip over the limit is denied, then every executable mmap, another process is not',
    kernel: { mprotect_limit: 3 },
    steps: [
      { ev: mprot(90, 3) }, { ev: mprot(90, 7) }, { ev: mmapx(90, 7) }, { ev: flip(90) }, { ev: flip(90) }, { ev: flip(90) },
      { ev: mprot(90, 3) },
      { ev: flip(90), deny: { reason: 'MPROTECT_LIMIT', verdict: 'kernel:mprotect_limit' } },
      { ev: mmapx(90, 5), deny: { reason: 'MPROTECT_LIMIT', verdict: 'kernel:mprotect_limit' } },
      { ev: mmapx(90, 3) },
      { ev: flip(91) },
    ],
  },
  {
    name: 'the flip counter starts again at an exec (the new image maps fine), not at a refused one',
    kernel: { mprotect_limit: 2 },
    steps: [
      { ev: flip(93) }, { ev: flip(93) },
      { ev: flip(93), deny: { reason: 'MPROTECT_LIMIT', verdict: 'kernel:mprotect_limit' } },
      { ev: exec(93) },
      { ev: mmapx(93, 5) }, { ev: flip(93) }, { ev: flip(93) },
      { ev: flip(93), deny: { reason: 'MPROTECT_LIMIT', verdict: 'kernel:mprotect_limit' } },
      { apply: { op: 'exec', subject: P(93), ts: 100 } },
      { ev: exec(93), deny: { reason: 'TGID', verdict: vid('r', 'exec', P(93)) } },
      { ev: mmapx(93, 5), deny: { reason: 'MPROTECT_LIMIT', verdict: 'kernel:mprotect_limit' } },
    ],
  },
  {
    name: 'an mprotect_exec verdict refuses executable mmaps too (effective prot), not the others',
    steps: [
      { apply: { op: 'mprotect_exec', subject: P(95), ts: 100 } },
      { ev: mmapx(95, 3) },
      { ev: mmapx(95, 7), deny: { reason: 'TGID', verdict: vid('r', 'mprotect_exec', P(95)) } },
      { ev: mmapx(96, 7) },
    ],
  },
  {
    name: 'TTL: an entry is live before its deadline and dead from it on',
    steps: [
      { apply: { op: 'exec', subject: P(100), ts: 10_000, ttl: 500 } },
      { ev: exec(100, undefined, 10_499), deny: { reason: 'TGID', verdict: vid('r', 'exec', P(100)) } },
      { ev: exec(100, undefined, 10_500) },
    ],
  },
  {
    name: 'verdicts on one key merge: ops OR-ed, the later deadline holds for both',
    steps: [
      { apply: { rule: 'a', op: 'exec', subject: P(110), ts: 20_000, ttl: 100 } },
      { apply: { rule: 'b', op: 'mprotect_exec', subject: P(110), ts: 20_010, ttl: 1000 } },
      { ev: exec(110, undefined, 20_500), deny: { reason: 'TGID', verdict: vid('a', 'exec', P(110)) } },
      { ev: mprot(110, 4, 20_600), deny: { reason: 'TGID', verdict: vid('b', 'mprotect_exec', P(110)) } },
      { ev: exec(110, undefined, 21_010) },
    ],
  },
  {
    name: 'a dead entry is replaced, not merged',
    steps: [
      { apply: { rule: 'a', op: 'exec', subject: P(120), ts: 30_000, ttl: 100 } },
      { apply: { rule: 'b', op: 'mprotect_exec', subject: P(120), ts: 30_200, ttl: 1000 } },
      { ev: exec(120, undefined, 30_300) },
      { ev: mprot(120, 4, 30_400), deny: { reason: 'TGID', verdict: vid('b', 'mprotect_exec', P(120)) } },
    ],
  },
  {
    name: 'never pid 1, never krsi itself',
    steps: [
      { apply: { op: 'quarantine', subject: P(1), ts: 100 } },
      { apply: { op: 'quarantine', subject: P(SELF), ts: 100 } },
      { ev: exec(1) },
      { ev: exec(SELF) },
    ],
  },
  {
    name: 'a pid verdict ends when the process exits (a reused pid starts clean)',
    steps: [
      { apply: { op: 'exec', subject: P(130), ts: 100 } },
      { ev: exec(130), deny: { reason: 'TGID', verdict: vid('r', 'exec', P(130)) } },
      { ev: ev('exit', 130, { code: 0 }) },
      { ev: exec(130) },
    ],
  },
  {
    name: 'fork (lifecycle): a new process inherits its parent\'s tgid verdict with the same expiry; an unrelated process does not',
    steps: [
      { apply: { op: 'quarantine', subject: P(300), ts: 40_000, ttl: 1000 } },
      { ev: ev('fork', 300, { child_pid: 301 }, 40_100) },
      { ev: exec(301, undefined, 40_200), deny: { reason: 'TGID', verdict: vid('r', 'quarantine', P(300)) } },
      { ev: mprot(301, 7, 40_300), deny: { reason: 'TGID', verdict: vid('r', 'quarantine', P(300)) } },
      { ev: ev('fork', 301, { child_pid: 303 }, 40_400) },
      { ev: exec(303, undefined, 40_500), deny: { reason: 'TGID', verdict: vid('r', 'quarantine', P(300)) } },
      { ev: exec(302, undefined, 40_600) },
      { ev: exec(301, undefined, 41_000) },
    ],
  },
  {
    name: 'fork (lifecycle): a child forked before the verdict is free; removing the verdict lifts the children\'s copies; a child\'s copy ends with it',
    steps: [
      { ev: ev('fork', 310, { child_pid: 311 }, 50_000) },
      { apply: { op: 'exec', subject: P(310), ts: 50_100 } },
      { ev: ev('fork', 310, { child_pid: 312 }, 50_200) },
      { ev: ev('fork', 310, { child_pid: 313 }, 50_250) },
      { ev: exec(311, undefined, 50_300) },
      { ev: exec(312, undefined, 50_400), deny: { reason: 'TGID', verdict: vid('r', 'exec', P(310)) } },
      { ev: ev('exit', 313, { code: 0 }, 50_450) },
      { ev: exec(313, undefined, 50_460) },
      { ev: exec(310, undefined, 50_470), deny: { reason: 'TGID', verdict: vid('r', 'exec', P(310)) } },
      { remove: vid('r', 'exec', P(310)) },
      { ev: exec(312, undefined, 50_500) },
      { ev: exec(310, undefined, 50_600) },
    ],
  },
  {
    name: 'fork (lifecycle): a threaded clone (child_pid == pid) and children of pid 1 or krsi inherit nothing',
    steps: [
      { apply: { op: 'quarantine', subject: P(320), ts: 60_000 } },
      { ev: ev('fork', 320, { child_pid: 320 }, 60_100) },
      { ev: exec(320, undefined, 60_200), deny: { reason: 'TGID', verdict: vid('r', 'quarantine', P(320)) } },
      { apply: { op: 'quarantine', subject: P(1), ts: 60_300 } },
      { ev: ev('fork', 1, { child_pid: 321 }, 60_400) },
      { ev: ev('fork', SELF, { child_pid: 322 }, 60_400) },
      { ev: exec(321, undefined, 60_500) },
      { ev: exec(322, undefined, 60_500) },
    ],
  },
  {
    name: 'removing a verdict takes its bits out of the entry',
    steps: [
      { apply: { rule: 'a', op: 'exec', subject: P(140), ts: 100 } },
      { apply: { rule: 'b', op: 'mprotect_exec', subject: P(140), ts: 100 } },
      { remove: vid('a', 'exec', P(140)) },
      { ev: exec(140) },
      { ev: mprot(140, 4), deny: { reason: 'TGID', verdict: vid('b', 'mprotect_exec', P(140)) } },
      { remove: vid('b', 'mprotect_exec', P(140)) },
      { ev: mprot(140, 4) },
    ],
  },
  {
    name: 'deny_exec_paths: the listed binary is denied by inode',
    kernel: { deny_exec_paths: 'vuln', lists: { vuln: [vulnPath] } },
    steps: [
      { ev: exec(150, { path: vulnPath, dev: vuln.dev, ino: vuln.ino }), deny: { reason: 'INODE', verdict: `kernel:deny_exec_paths:${vulnPath}` } },
      { ev: exec(150, { path: '/bin/other', dev: 1, ino: 2 }) },
    ],
  },
  {
    name: 'deny_fileless_exec: a memfd and a file with no link left are refused; a file on disk, a path unlinked while another link remains, and an older log without the facts are not',
    kernel: { deny_fileless_exec: true },
    steps: [
      { ev: exec(155, { path: '/memfd:x (deleted)', dev: 1, ino: 1505, nlink: 0, memfd: true, deleted: true } as never), deny: { reason: 'FILELESS', verdict: 'kernel:deny_fileless_exec' } },
      { ev: exec(155, { path: '/tmp/x (deleted)', dev: 2049, ino: 90, nlink: 0, memfd: false, deleted: true } as never), deny: { reason: 'FILELESS', verdict: 'kernel:deny_fileless_exec' } },
      { ev: exec(155, { path: '/tmp/y (deleted)', dev: 2049, ino: 91, nlink: 1, memfd: false, deleted: true } as never) },
      { ev: exec(155, { path: '/bin/t', dev: 1, ino: 1, nlink: 1, memfd: false, deleted: false } as never) },
      { ev: exec(155) },
    ],
  },
  {
    name: 'deny_fileless_exec in a monitor-mode rule configures nothing',
    kernel: { mode: 'monitor', deny_fileless_exec: true },
    steps: [{ ev: exec(156, { path: '/memfd:x (deleted)', dev: 1, ino: 1505, nlink: 0, memfd: true, deleted: true } as never) }],
  },
  {
    name: 'module allowlist: a module not on it is denied, one on it loads',
    kernel: { module_allowlist: 'allowed', lists: { allowed: ['dummy'] } },
    steps: [
      { ev: modload(160, 'dummy') },
      { ev: modload(160, 'evil'), deny: { reason: 'MODULE_ALLOW', verdict: 'kernel:module_allowlist' } },
    ],
  },
  {
    name: 'module denylist: a module on it is denied, another loads',
    kernel: { module_denylist: 'bad', lists: { bad: ['evil'] } },
    steps: [
      { ev: modload(170, 'evil'), deny: { reason: 'MODULE_DENY', verdict: 'kernel:module_denylist' } },
      { ev: modload(170, 'good') },
    ],
  },
  {
    name: 'module denylist: the refused process\'s load from memory right after (busybox insmod\'s fallback) is refused too, until the window ends; another process is not',
    kernel: { module_denylist: 'bad', lists: { bad: ['evil'] } },
    steps: [
      { ev: modload(175, 'evil', 70_000), deny: { reason: 'MODULE_DENY', verdict: 'kernel:module_denylist' } },
      { ev: memload(175, 'evil', 70_100), deny: { reason: 'MODULE_DENY', verdict: 'kernel:module_refused' } },
      { ev: memload(175, 'good', 70_200), deny: { reason: 'MODULE_DENY', verdict: 'kernel:module_refused' } },
      { ev: memload(176, 'good', 70_300) },
      { ev: memload(175, 'good', 70_000 + MODULE_REFUSAL_NS) },
    ],
  },
  {
    name: 'module verdict by name: the refused process\'s fallback from memory is refused (INODE); its exit ends the window',
    steps: [
      { apply: { op: 'module_load', subject: { kind: 'module', name: 'evil' }, ts: 80_000 } },
      { ev: modload(177, 'evil', 80_100), deny: { reason: 'INODE', verdict: vid('r', 'module_load', { kind: 'module', name: 'evil' }) } },
      { ev: memload(177, 'good', 80_200), deny: { reason: 'INODE', verdict: 'kernel:module_refused' } },
      { ev: ev('exit', 177, { code: 1 }, 80_300) },
      { ev: memload(177, 'good', 80_400) },
    ],
  },
  {
    name: 'module verdicts: by name (resolved to the .ko inode) and by module file',
    steps: [
      { apply: { op: 'module_load', subject: { kind: 'module', name: 'evil' }, ts: 100 } },
      { apply: { rule: 'f', op: 'module_load', subject: { kind: 'module_file', ...MODS.good }, ts: 100 } },
      { ev: modload(180, 'evil'), deny: { reason: 'INODE', verdict: vid('r', 'module_load', { kind: 'module', name: 'evil' }) } },
      { ev: modload(180, 'good'), deny: { reason: 'INODE', verdict: vid('f', 'module_load', { kind: 'module_file', ...MODS.good }) } },
      { ev: modload(180, 'dummy') },
    ],
  },
  {
    name: 'module_load verdict on a pid: that process may not load modules',
    steps: [
      { apply: { op: 'module_load', subject: P(190), ts: 100 } },
      { ev: modload(190, 'dummy'), deny: { reason: 'TGID', verdict: vid('r', 'module_load', P(190)) } },
      { ev: exec(190) },
    ],
  },
  {
    name: 'kernel blocks of monitor-mode rules configure nothing',
    kernel: { mode: 'monitor', mprotect_limit: 1, module_allowlist: 'allowed', lists: { allowed: [] } },
    steps: [{ ev: mprot(200, 3) }, { ev: mprot(200, 7) }, { ev: modload(200, 'dummy') }],
  },
];

function ruleSet(row: Row): CompiledRuleSet {
  const rules: CompiledRule[] = [];
  const lists: Record<string, Set<string | number>> = {};
  if (row.kernel) {
    const { lists: l, mode, ...kernel } = row.kernel;
    for (const [k, v] of Object.entries(l ?? {})) lists[k] = new Set(v);
    rules.push({ id: 'k', mode: mode ?? 'enforce', kernel, source: { enabled: true } } as unknown as CompiledRule);
  }
  return { rules, lists, byType: new Map() };
}

function verdict(a: Extract<Step, { apply: unknown }>['apply']): Verdict {
  const rule = a.rule ?? 'r';
  const ttl = a.ttl ?? 0;
  return { id: verdictId(rule, a.op, a.subject), rule, op: a.op, subject: a.subject, ts: a.ts, ttl_ns: ttl, expires: ttl ? a.ts + ttl : 0, mode: 'enforce' };
}

/** what the kernel knows of an entry's cause: the rule_id it carries */
interface KCause { rule_id: number }

/** the maps as bpf/enforce.bpf.c reads them (keys by inode, module lists by file), for the hooks of the
 *  SEMANTICS rows (engine/enforcement/hooks.ts): what the enforcer wrote is what the kernel would read */
class KernelMaps implements MapsView<KCause> {
  private counts = new Map<number, number>();
  /** module_refused: tgid -> {until, reason, rule_id} */
  private refusals = new Map<number, { until: number; reason: DenyReason; cause: KCause }>();
  constructor(private readonly maps: MemoryMapWriter) {}
  get self() { return this.maps.cfg!.krsi_tgid; }
  private get cfg() { return this.maps.cfg!; }
  private live(k: EntryKey, bit: number, ts: number): KCause | undefined {
    const v = this.maps.entries.get(keyString(k))?.value;
    return v && (v.ops & bit) !== 0 && live(v.expires, ts) ? { rule_id: v.rule_id } : undefined;
  }
  inode(f: { dev: number; ino: number }, bit: number, ts: number) { return this.live({ map: 'deny_inode', dev: f.dev, ino: f.ino }, bit, ts); }
  tgid(pid: number, bit: number, ts: number) { return this.live({ map: 'deny_tgid', tgid: pid }, bit, ts); }
  moduleName() { return undefined; } // the enforcer resolved names to deny_inode
  count(pid: number) {
    if (!this.cfg.mprotect_limit) return 0;
    const n = (this.counts.get(pid) ?? 0) + 1;
    this.counts.set(pid, n);
    return n;
  }
  counted(pid: number) { return this.cfg.mprotect_limit ? (this.counts.get(pid) ?? 0) : 0; }
  overLimit(n: number) { return this.cfg.mprotect_limit > 0 && n > this.cfg.mprotect_limit ? { rule_id: 0 } : undefined; }
  denylisted(_name: string, file?: { dev: number; ino: number }) {
    const v = file && (this.cfg.module_mode & KRSI_MODULE_MODE.DENYLIST) !== 0 ? this.maps.entries.get(keyString({ map: 'module_deny', ...file }))?.value : undefined;
    return v && { rule_id: v.rule_id };
  }
  notAllowlisted(_name: string, file?: { dev: number; ino: number }) {
    if ((this.cfg.module_mode & KRSI_MODULE_MODE.ALLOWLIST) === 0) return undefined;
    return file && this.maps.entries.has(keyString({ map: 'module_allow', ...file })) ? undefined : { rule_id: 0 };
  }
  fileless(exe: { memfd?: boolean; nlink?: number }) { return (this.cfg.flags ?? 0) & KRSI_CFG.DENY_FILELESS && (exe.memfd === true || exe.nlink === 0) ? { rule_id: 0 } : undefined; }
  refused(pid: number, ts: number) { const r = this.refusals.get(pid); return r && ts < r.until ? r : undefined; }
  refuse(pid: number, until: number, reason: DenyReason, cause: KCause) { this.refusals.set(pid, { until, reason, cause }); }
  perTgid(map: string) {
    // the krsi_exit program
    if (map === 'deny_tgid') return { delete: (pid: number) => this.maps.entries.delete(keyString({ map: 'deny_tgid', tgid: pid })) };
    return map === 'mprotect_count' ? this.counts : this.refusals;
  }
  copy(map: string, from: number, to: number, ts: number) {
    // the krsi_fork program: a new tgid gets the parent's live entry
    const v = map === 'deny_tgid' ? this.maps.entries.get(keyString({ map: 'deny_tgid', tgid: from }))?.value : undefined;
    if (v && live(v.expires, ts)) { const key: EntryKey = { map: 'deny_tgid', tgid: to }; this.maps.entries.set(keyString(key), { key, value: { ...v } }); }
  }
}

/** the kernel's denied record for an event, shaped as bpf/abi.ts decodeDenied returns it */
class KernelReading {
  private readonly hooks: Hooks<KCause>;
  constructor(maps: MemoryMapWriter) {
    this.hooks = new Hooks(new KernelMaps(maps));
  }
  check(e: KrsiEvent): DeniedEvent | undefined {
    const hit = this.hooks.judge(e);
    if (!hit) return undefined;
    const file = e.type === 'exec' ? e.exe : e.type === 'module_load' ? e.file : undefined;
    const key = hit.reason === 'TGID' ? { pid: e.pid } : hit.reason === 'MPROTECT_LIMIT' ? { counter: 'mprotect_limit', pid: e.pid } : file ? { ...file } : { module: '(from memory)' };
    return { ...e, type: 'denied', op: hit.hook.op, key, reason: hit.reason, rule_id: hit.cause.rule_id, enforced: true } as DeniedEvent;
  }
}

const strip = (d: DeniedOut | undefined) => d && { op: d.op, pid: d.pid, ts: d.ts, reason: d.reason, verdict: d.verdict, rule: d.rule };

describe('enforcement semantics: the model and the enforcer\'s map entries agree, row by row', () => {
  for (const row of ROWS) {
    test(row.name, async () => {
      const set = ruleSet(row);
      const model = new EnforcementModel({ selfPid: SELF });
      model.configure(set, { resolve: (p) => { try { const s = statSync(p); return { dev: s.dev, ino: s.ino }; } catch { return undefined; } } });
      // model: deny_module_name is keyed by name and module lists hold names; the kernel by file inode
      const sdir = mkdtempSync(join(dir, 'state-'));
      const store = VerdictStore.open(sdir);
      const maps = new MemoryMapWriter();
      let now = 0;
      const enf = new Enforcer(store, maps, { selfPid: SELF, modules, clock: () => ({ boot: now, wall: 1e12 + now / 1e6, bootId: 'b' }), procStart: () => 1 });
      enf.configure(set);
      const kernel = new KernelReading(maps);
      try {
        for (const step of row.steps) {
          if ('apply' in step) {
            const v = verdict(step.apply);
            now = v.ts;
            model.apply(v);
            enf.apply(v);
          } else if ('remove' in step) {
            model.remove(step.remove);
            enf.remove(step.remove);
          } else {
            now = step.ev.ts;
            const m = model.check(step.ev);
            const k = kernel.check(step.ev);
            if (step.ev.type === 'exit') enf.exited(step.ev.pid);
            if (step.ev.type === 'fork') enf.forked(step.ev.pid, step.ev.child_pid, step.ev.ts);
            const kOut = k && enf.deniedOut(k);
            const what = `${step.ev.type} pid ${step.ev.pid} at ${step.ev.ts}`;
            assert.deepEqual(strip(kOut), strip(m), `${what}: enforcer's maps and the model disagree`);
            const want = step.deny && { op: ({ exec: 'exec', mprotect: 'mprotect_exec', mmap: 'mprotect_exec', module_load: 'module_load' } as Record<string, string>)[step.ev.type], pid: step.ev.pid, ts: step.ev.ts, reason: step.deny.reason, verdict: step.deny.verdict };
            const got = strip(m);
            if (got) delete (got as { rule?: string }).rule;
            assert.deepEqual(got, want, `${what}: expected ${want ? 'denied' : 'allowed'}`);
          }
        }
      } finally {
        await enf.close();
      }
    });
  }

  test('the rows exercise every check of every modelled hook', () => {
    const hit = new Set<string>();
    for (const row of ROWS) for (const s of row.steps) if ('ev' in s && s.deny) hit.add(`${s.ev.type}:${s.deny.reason}`);
    for (const r of SEMANTICS) {
      if (r.hook === 'kernel_load_data') continue;
      for (const c of r.checks) assert.ok(hit.has(`${r.event}:${c.reason}`), `no row denies ${r.event} by ${c.reason} (${c.map})`);
    }
    assert.equal(KRSI_OP.QUARANTINE, KRSI_OP.EXEC | KRSI_OP.MPROTECT_EXEC | KRSI_OP.MODULE_LOAD);
  });
});
