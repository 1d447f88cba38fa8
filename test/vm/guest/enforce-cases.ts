// Runs inside the VM (test/vm/enforce.test.ts boots it once): loads krsi's enforcement programs, runs
// every kernel-side case (each with its positive and its negative) and writes what it observed to
// <results>/results.json; the host test asserts. Usage: node --import tsx enforce-cases.ts HELPER RESULTS_DIR
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { loadEnforcement, unloadEnforcement, enforcementLoaded } from '../../../enforcers/programs.ts';
import { existsSync } from 'node:fs';
import { ENFORCE_PIN_DIR } from '../../../enforcers/maps.ts';
import {
  KRSI_OP, decodeDenyCounts, encodeInodeKey, kernelFileId, encodeTgidKey, encodeVerdict, decodeTgidKey, type DecodedDenied,
} from '../../../enforcers/maps.ts';
import { bootTimeNs, VerdictStore } from '../../../enforcers/store.ts';
import { decodeVerdict } from '../../../enforcers/maps.ts';
import { Enforcer, ModuleResolver, PinnedMapWriter, type VerdictMaps } from '../../../enforcers/index.ts';
import type { CompiledRuleSet } from '../../../engine/rules/types.ts';
import { compressedModules, plainModule, shippedModule } from './kmod.ts';
import { kernelFeatures } from '../../../bpf/features.ts';

const [helperSrc, resultsDir] = process.argv.slice(2);
const D = '/mnt/krsi';
const modulesDir = process.env.KRSI_VM_MODULES!;
const obs: Record<string, unknown> = { selfPid: process.pid };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[]): { code: number | null; out: string; pid: number } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  // a process that died by a signal or never started says so (status null alone says neither)
  const how = r.signal ? ` [killed by ${r.signal}]` : r.error ? ` [spawn failed: ${(r.error as NodeJS.ErrnoException).code}]` : '';
  return { code: r.status, out: `${(r.stdout ?? '') + (r.stderr ?? '')}`.trim() + how, pid: r.pid ?? 0 };
}

/** start `vmhelper mprotect n wait`; returns the pid, and go() lets it run and resolves with its output */
function mprotector(n: number) {
  return waiting(['mprotect', String(n), 'wait']);
}

/** start `vmhelper ...args` that waits for a line on stdin; go() sends it and resolves with the output
 *  (start() only sends it; out() is the output so far; done resolves at exit) */
async function waiting(args: string[]): Promise<{
  pid: number; go: () => Promise<{ code: number | null; out: string }>; start: () => void; out: () => string; done: Promise<{ code: number | null; out: string }>;
}> {
  const c = spawn(`${D}/vmhelper`, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  await new Promise<void>((res, rej) => { c.once('spawn', () => res()); c.once('error', rej); });
  let out = '';
  c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  c.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const closed = new Promise<number | null>((res) => c.once('close', (code) => res(code)));
  await sleep(100); // let the exec complete (the pid is the helper's from here on)
  const done = closed.then((code) => ({ code, out: out.trim() }));
  return {
    pid: c.pid!,
    go: async () => {
      c.stdin.end('go\n');
      return done;
    },
    start: () => c.stdin.end('go\n'),
    out: () => out,
    done,
  };
}

// ---- set up: a tmpfs with the test's own files (real inodes, not overlay ones) ----
mkdirSync(D, { recursive: true });
execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', D]);
copyFileSync(helperSrc, `${D}/vmhelper`);
chmodSync(`${D}/vmhelper`, 0o755);
for (const n of ['denied-true', 'other-true', 'ttl-true']) {
  copyFileSync('/bin/true', `${D}/${n}`);
  chmodSync(`${D}/${n}`, 0o755);
}
const mods: Record<string, string> = {
  tun: 'drivers/net/tun',
  dummy: 'drivers/net/dummy', ifb: 'drivers/net/ifb', nlmon: 'drivers/net/nlmon', bfs: 'fs/bfs/bfs', veth: 'drivers/net/veth', minix: 'fs/minix/minix',
};
for (const [m, p] of Object.entries(mods)) plainModule(p, `${D}/${m}.ko`);
const fileKey = (p: string) => { const s = statSync(p); return encodeInodeKey({ dev: s.dev, ino: s.ino }); };
const verdict = (ops: number, rule_id = 0, expires = 0) => encodeVerdict({ expires, ops, rule_id });
const loadedModules = () => readFileSync('/proc/modules', 'utf8').split('\n').map((l) => l.split(' ')[0]);

// what `krsi status` reports about this kernel: every program's hook or tracepoint, read from its BTF
obs.features = kernelFeatures();

let h = await loadEnforcement({ selfPid: process.pid, config: { enforce: 1, mprotect_limit: 0, module_mode: 0 } });
const events: DecodedDenied[] = [];
let stopDenied = h.onDenied((ev) => events.push(ev));
const t0 = Date.now();
/** deny_count by slot (the map starts again at zero after an unload) */
function readCounts(): Map<number, bigint> {
  const m = new Map<number, bigint>();
  for (let slot = 0; slot < 8; slot++) {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(slot);
    m.set(slot, h.maps.deny_count.lookup(k)!.readBigUInt64LE(0));
  }
  return m;
}
let countsBeforeUnload = new Map<number, bigint>();

// ---- exec: a deny-listed binary fails with EPERM, an identical copy at another inode runs ----
h.maps.deny_inode.update(fileKey(`${D}/denied-true`), verdict(KRSI_OP.EXEC, 11));
obs.exec = { denied: run(`${D}/vmhelper`, ['exec', `${D}/denied-true`]), other: run(`${D}/vmhelper`, ['exec', `${D}/other-true`]) };

// ---- overlayfs (the guest's /): a key from kernelFileId() matches what the hook sees; stat()'s does not ----
{
  for (const n of ['ovl-true', 'ovl-stat-true']) {
    copyFileSync('/bin/true', `/root/${n}`);
    chmodSync(`/root/${n}`, 0o755);
  }
  const st = statSync('/root/ovl-stat-true');
  h.maps.deny_inode.update(encodeInodeKey(kernelFileId('/root/ovl-true')), verdict(KRSI_OP.EXEC, 21));
  h.maps.deny_inode.update(encodeInodeKey({ dev: st.dev, ino: st.ino }), verdict(KRSI_OP.EXEC, 21));
  obs.overlay = {
    kernelId: run(`${D}/vmhelper`, ['exec', '/root/ovl-true']),
    statId: run(`${D}/vmhelper`, ['exec', '/root/ovl-stat-true']),
    statDev: st.dev,
    kernelDev: kernelFileId('/root/ovl-stat-true').dev,
  };
}

// ---- monitor mode: the same denial is only recorded ----
h.setConfig({ enforce: 0 });
obs.monitor = { denied: run(`${D}/vmhelper`, ['exec', `${D}/denied-true`]) };
h.setConfig({ enforce: 1 });

// ---- the talk's example (issue 11: counting W->X flips): the 101st flip fails; another process is unaffected ----
h.setConfig({ mprotect_limit: 100 });
{
  const a = await mprotector(150);
  const before = h.maps.mprotect_count.lookup(encodeTgidKey(a.pid));
  const baseA = before ? Number(before.readBigUInt64LE(0)) : 0;
  const b = await mprotector(50);
  const beforeB = h.maps.mprotect_count.lookup(encodeTgidKey(b.pid));
  const baseB = beforeB ? Number(beforeB.readBigUInt64LE(0)) : 0;
  const ra = await a.go();
  const afterA = h.maps.mprotect_count.lookup(encodeTgidKey(a.pid)) !== undefined;
  const rb = await b.go();
  obs.mprotectLimit = { a: { pid: a.pid, base: baseA, ...ra }, b: { pid: b.pid, base: baseB, ...rb }, countKeptAfterExitA: afterA };
}
h.setConfig({ mprotect_limit: 0 });

// ---- a tgid verdict: MPROTECT_EXEC denies that process only; an EXEC-only verdict does not touch mprotect ----
{
  const c = await mprotector(3);
  const d = await mprotector(3);
  h.maps.deny_tgid.update(encodeTgidKey(c.pid), verdict(KRSI_OP.MPROTECT_EXEC, 12));
  h.maps.deny_tgid.update(encodeTgidKey(d.pid), verdict(KRSI_OP.EXEC, 13));
  const rc = await c.go();
  const rd = await d.go();
  await sleep(50);
  const left = [...h.maps.deny_tgid.keys()].map(decodeTgidKey);
  obs.tgid = { c: { pid: c.pid, ...rc }, d: { pid: d.pid, ...rd }, clearedOnExit: !left.includes(c.pid) && !left.includes(d.pid) };
}

// ---- krsi's own tgid is never denied: a quarantined process named as krsi runs; named back, it is denied ----
{
  const e = await mprotector(3);
  const f = await mprotector(3);
  h.maps.deny_tgid.update(encodeTgidKey(e.pid), verdict(KRSI_OP.QUARANTINE, 14));
  h.maps.deny_tgid.update(encodeTgidKey(f.pid), verdict(KRSI_OP.QUARANTINE, 14));
  h.setConfig({ krsi_tgid: e.pid });
  const re = await e.go();
  h.setConfig({ krsi_tgid: process.pid });
  const rf = await f.go();
  // this node process (krsi) quarantined: its own mprotect(PROT_EXEC) still works
  h.maps.deny_tgid.update(encodeTgidKey(process.pid), verdict(KRSI_OP.QUARANTINE, 15));
  const libc = koffi.load('libc.so.6');
  const mmap = libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)');
  const mprotect = libc.func('int mprotect(void *addr, size_t len, int prot)');
  const page = mmap(null, 4096, 3, 0x22, -1, 0);
  const selfRc = mprotect(page, 4096, 5) as number;
  const selfErrno = selfRc ? koffi.errno() : 0;
  h.maps.deny_tgid.delete(encodeTgidKey(process.pid));
  obs.self = { asKrsi: { pid: e.pid, ...re }, notKrsi: { pid: f.pid, ...rf }, node: { rc: selfRc, errno: selfErrno } };
}

// ---- TTL: the kernel stops denying once the deadline passed, while the entry is still in the map ----
{
  const key = fileKey(`${D}/ttl-true`);
  const ttlNs = 1_500_000_000;
  const expires = bootTimeNs() + ttlNs;
  h.maps.deny_inode.update(key, verdict(KRSI_OP.EXEC, 16, expires));
  const before = run(`${D}/vmhelper`, ['exec', `${D}/ttl-true`]);
  const beforeAt = bootTimeNs();
  while (bootTimeNs() < expires + 50_000_000) await sleep(50);
  const after = run(`${D}/vmhelper`, ['exec', `${D}/ttl-true`]);
  obs.ttl = { before, beforeInTime: beforeAt < expires, after, entryStillThere: h.maps.deny_inode.lookup(key) !== undefined };
}

// ---- modules, allowlist: a module not on the list fails with EPERM, an allowed one loads ----
{
  h.maps.module_allow.update(fileKey(`${D}/dummy.ko`), verdict(KRSI_OP.MODULE_LOAD, 17));
  h.setConfig({ module_mode: 1 });
  const notAllowed = run('busybox', ['insmod', `${D}/ifb.ko`]);
  const allowed = run('busybox', ['insmod', `${D}/dummy.ko`]);
  h.setConfig({ module_mode: 0 });
  const mods = loadedModules();
  obs.moduleAllow = { notAllowed, allowed, ifbLoaded: mods.includes('ifb'), dummyLoaded: mods.includes('dummy') };
}

// ---- modules, compressed (kernels that ship .ko.xz, 6.12): finit_module(MODULE_INIT_COMPRESSED_FILE) reads the
// compressed file through kernel_read_file; the allowlist keys on that file's inode like any other ----
if (compressedModules()) {
  for (const m of ['qnx4', 'qnx6']) copyFileSync(shippedModule(`fs/${m}/${m}`), `${D}/${m}.ko.xz`);
  h.maps.module_allow.update(fileKey(`${D}/qnx6.ko.xz`), verdict(KRSI_OP.MODULE_LOAD, 19));
  h.setConfig({ module_mode: 1 });
  const notAllowed = run(`${D}/vmhelper`, ['finitz', `${D}/qnx4.ko.xz`]);
  const allowed = run(`${D}/vmhelper`, ['finitz', `${D}/qnx6.ko.xz`]);
  h.setConfig({ module_mode: 0 });
  const mods = loadedModules();
  obs.moduleCompressed = { notAllowed, allowed, qnx4Loaded: mods.includes('qnx4'), qnx6Loaded: mods.includes('qnx6') };
}

// ---- modules, denylist: a listed module file fails, another loads ----
{
  h.maps.module_deny.update(fileKey(`${D}/nlmon.ko`), verdict(KRSI_OP.MODULE_LOAD, 18));
  h.setConfig({ module_mode: 2 });
  const listed = run(`${D}/vmhelper`, ['finit', `${D}/nlmon.ko`]);
  const other = run(`${D}/vmhelper`, ['finit', `${D}/bfs.ko`]);
  h.setConfig({ module_mode: 0 });
  const mods = loadedModules();
  obs.moduleDeny = { listed, other, nlmonLoaded: mods.includes('nlmon'), bfsLoaded: mods.includes('bfs') };
}

// ---- a tgid verdict with the MODULE_LOAD bit: that process cannot load a module (lists off); another can ----
{
  const g = await waiting(['finit', `${D}/veth.ko`, 'wait']);
  h.maps.deny_tgid.update(encodeTgidKey(g.pid), verdict(KRSI_OP.MODULE_LOAD, 20));
  const rg = await g.go();
  const other = run(`${D}/vmhelper`, ['finit', `${D}/minix.ko`]);
  const mods = loadedModules();
  obs.moduleTgid = { denied: { pid: g.pid, ...rg }, other, vethLoaded: mods.includes('veth'), minixLoaded: mods.includes('minix') };
}

// ---- quarantine through fork: the child (a new tgid) inherits the parent's entry, same expiry ----
{
  const q = await waiting(['forkexec', `${D}/other-true`, 'wait']);
  const expires = bootTimeNs() + 120_000_000_000;
  h.maps.deny_tgid.update(encodeTgidKey(q.pid), verdict(KRSI_OP.QUARANTINE, 22, expires));
  q.start();
  let child = 0;
  for (let i = 0; i < 200 && !child; i++) {
    const m = /child=(\d+)/.exec(q.out());
    if (m) child = Number(m[1]);
    else await sleep(10);
  }
  // the child sleeps 1 s before its exec: read its entry meanwhile
  const e = child ? h.maps.deny_tgid.lookup(encodeTgidKey(child)) : undefined;
  const childEntry = e && decodeVerdict(e);
  const rq = await q.done;
  const unrelated = run(`${D}/vmhelper`, ['exec', `${D}/other-true`]);
  await sleep(50);
  const left = [...h.maps.deny_tgid.keys()].map(decodeTgidKey);
  obs.fork = { parent: { pid: q.pid, ...rq }, child, childEntry, expires, unrelated, childClearedOnExit: !left.includes(child) };
}

// ---- overlayfs (the guest's /): keys the enforcer builds from paths (deny_exec_paths, module names) deny ----
{
  copyFileSync('/bin/true', '/root/dep-true');
  chmodSync('/root/dep-true', 0o755);
  mkdirSync('/root/mods', { recursive: true });
  plainModule(mods.ifb, '/root/mods/ifb.ko');
  const store = VerdictStore.open('/root/krsi-state');
  const enf = new Enforcer(store, new PinnedMapWriter(h.maps as unknown as VerdictMaps, true, () => {}), { selfPid: process.pid, modules: new ModuleResolver('/root/mods') });
  const set = {
    rules: [{ id: 'vuln-paths', mode: 'enforce', kernel: { deny_exec_paths: 'vp' }, source: { enabled: true } }],
    lists: { vp: new Set(['/root/dep-true']) },
    byType: new Map(),
  } as unknown as CompiledRuleSet;
  enf.configure(set);
  const v = { id: 'no-ifb:module_load:module:ifb', rule: 'no-ifb', op: 'module_load' as const, subject: { kind: 'module' as const, name: 'ifb' }, ts: bootTimeNs(), ttl_ns: 0, expires: 0, mode: 'enforce' as const };
  const applied = enf.apply(v);
  const exec = run(`${D}/vmhelper`, ['exec', '/root/dep-true']);
  const mod = run(`${D}/vmhelper`, ['finit', '/root/mods/ifb.ko']);
  enf.remove(v.id);
  enf.configure({ rules: [], lists: {}, byType: new Map() } as unknown as CompiledRuleSet);
  const after = run(`${D}/vmhelper`, ['exec', '/root/dep-true']);
  await enf.close();
  h.setConfig({ krsi_tgid: process.pid, enforce: 1, mprotect_limit: 0, module_mode: 0 });
  obs.enforcerOverlay = { applied, exec, mod, after, ifbLoaded: loadedModules().includes('ifb') };
}

// ---- sweep: an expired verdict leaves the real map; a short one merged into a permanent entry stays ----
{
  for (const n of ['sw-true', 'sw2-true']) {
    copyFileSync('/bin/true', `${D}/${n}`);
    chmodSync(`${D}/${n}`, 0o755);
  }
  const enf = new Enforcer(VerdictStore.open('/root/krsi-sweep'), new PinnedMapWriter(h.maps as unknown as VerdictMaps, true, () => {}), { selfPid: process.pid });
  const now = bootTimeNs();
  const exec = (id: string, path: string, ttl: number) => {
    const s = statSync(path);
    return { id, rule: 'sw', op: 'exec' as const, subject: { kind: 'inode' as const, dev: s.dev, ino: s.ino }, ts: now, ttl_ns: ttl, expires: ttl ? now + ttl : 0, mode: 'enforce' as const };
  };
  enf.apply(exec('sw:short', `${D}/sw-true`, 1e9));
  enf.apply(exec('sw:long', `${D}/sw2-true`, 0));
  enf.apply(exec('sw:short2', `${D}/sw2-true`, 1e9));
  const deniedBefore = run(`${D}/vmhelper`, ['exec', `${D}/sw-true`]);
  await sleep(1300);
  const swept = enf.sweep();
  const shortEntry = h.maps.deny_inode.lookup(fileKey(`${D}/sw-true`)) !== undefined;
  const longEntry = h.maps.deny_inode.lookup(fileKey(`${D}/sw2-true`)) !== undefined;
  const shortRuns = run(`${D}/vmhelper`, ['exec', `${D}/sw-true`]);
  const longDenied = run(`${D}/vmhelper`, ['exec', `${D}/sw2-true`]);
  enf.remove('sw:long');
  enf.remove('sw:short2');
  await enf.close();
  h.setConfig({ krsi_tgid: process.pid, enforce: 1, mprotect_limit: 0, module_mode: 0 });
  obs.sweep = { deniedBefore, swept, shortEntry, longEntry, shortRuns, longDenied };
}

// ---- denylist and busybox insmod: the file load is refused, and so is its immediate fallback from memory ----
{
  h.maps.module_deny.update(fileKey(`${D}/tun.ko`), verdict(KRSI_OP.MODULE_LOAD, 23));
  h.setConfig({ module_mode: 2 });
  const listed = run('busybox', ['insmod', `${D}/tun.ko`]);
  const loadedAfterListed = loadedModules().includes('tun');
  // the documented limit of a denylist: another process loading the same module from memory is not refused
  const fromMemory = run(`${D}/vmhelper`, ['init', `${D}/tun.ko`]);
  h.setConfig({ module_mode: 0 });
  obs.moduleDenyFallback = { listed, loadedAfterListed, fromMemory, loadedAfterMemory: loadedModules().includes('tun') };
}

// ---- restart: a second load reuses the pinned programs and maps (verdicts survive); reload keeps the maps ----
{
  const deniedKey = fileKey(`${D}/denied-true`);
  const h2 = await loadEnforcement({ selfPid: process.pid });
  const reusedEntry = h2.maps.deny_inode.lookup(deniedKey) !== undefined;
  h2.close();
  const h3 = await loadEnforcement({ selfPid: process.pid, reload: true });
  const reloadedEntry = h3.maps.deny_inode.lookup(deniedKey) !== undefined;
  const afterReload = run(`${D}/vmhelper`, ['exec', `${D}/denied-true`]);
  h3.close();
  obs.restart = { reused: h2.reused, reusedEntry, reloaded: !h3.reused, reloadedEntry, afterReload };
}

// ---- unload: every pin goes, the programs detach, the denied binary runs again ----
{
  await stopDenied();
  countsBeforeUnload = readCounts();
  h.close();
  const pins = unloadEnforcement();
  const afterUnload = run(`${D}/vmhelper`, ['exec', `${D}/denied-true`]);
  obs.unload = { pins, loaded: enforcementLoaded(), dirGone: !existsSync(ENFORCE_PIN_DIR), afterUnload };
  h = await loadEnforcement({ selfPid: process.pid, config: { enforce: 1 } });
  stopDenied = h.onDenied((ev) => events.push(ev));
}

// ---- pid 1 is never denied: quarantine pid 1 and deny the binary it will exec; pid 1 runs it after us ----
{
  copyFileSync(`${D}/vmhelper`, `${D}/pid1-helper`);
  chmodSync(`${D}/pid1-helper`, 0o755);
  h.maps.deny_tgid.update(encodeTgidKey(1), verdict(KRSI_OP.QUARANTINE, 19));
  h.maps.deny_inode.update(fileKey(`${D}/pid1-helper`), verdict(KRSI_OP.EXEC, 19));
  // the negative: the same binary exec'd by another process is denied
  obs.pid1Negative = run(`${D}/vmhelper`, ['exec', `${D}/pid1-helper`, 'pid1', '/dev/null']);
  writeFileSync('/run/vmxfer/pid1.sh', `exec ${D}/pid1-helper pid1 ${resultsDir}/pid1.out\n`, { mode: 0o755 });
}

// ---- denied events reach the ring buffer; per-reason counters ----
await sleep(300);
await stopDenied();
obs.events = events.map((e) => ({ pid: e.pid, op: e.op, reason: e.reason, key: e.key, rule_id: e.rule_id, enforced: e.enforced, comm: e.comm }));
const counts = readCounts();
for (const [slot, n] of countsBeforeUnload) counts.set(slot, (counts.get(slot) ?? 0n) + n);
obs.counts = decodeDenyCounts(counts);
obs.lost = Number(counts.get(0));
obs.casesMs = Date.now() - t0;
h.close(); // programs and maps stay pinned: pid 1's case runs after this process
writeFileSync(join(resultsDir, 'results.json'), JSON.stringify(obs, null, 1));
