// The ring buffer decoder on hand-built records laid out as bpf/krsi.h says (offsets from bpf/abi.ts LAYOUTS),
// and the one `denied` decoder: a record reads the same through signals' Decoder and the enforcer's ring.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { Decoder, exitCodeFromStatus, pathFromWalk } from '../../signals/decode.ts';
import { EV, KRSI_DENY, KRSI_ENV_AREA, KRSI_EXEC, KRSI_FILE_NLINK, KRSI_FILE_RET, KRSI_MEM, KRSI_OP, KRSI_ROUTE, KRSI_RUNNER, LAYOUTS, decodeDenied, devFromKernel, devToKernel } from '../../bpf/abi.ts';
import * as maps from '../../enforcers/maps.ts';

const F = (s: string, f: string) => LAYOUTS[s].fields[f];

function record(struct: string, kind: number, pid: number): Buffer {
  const b = Buffer.alloc(LAYOUTS[struct].size);
  b.writeBigUInt64LE(123456789n, F('krsi_hdr', 'ts'));
  b.writeUInt32LE(kind, F('krsi_hdr', 'kind'));
  b.writeUInt32LE(pid, F('krsi_hdr', 'pid'));
  b.writeUInt32LE(pid, F('krsi_hdr', 'tid'));
  b.writeUInt32LE(1, F('krsi_hdr', 'ppid'));
  b.writeUInt32LE(1000, F('krsi_hdr', 'uid'));
  b.writeBigUInt64LE(77n, F('krsi_hdr', 'exe') + F('krsi_file_id', 'ino'));
  b.writeUInt32LE((8 << 20) | 1, F('krsi_hdr', 'exe') + F('krsi_file_id', 'dev'));
  b.write('evil', F('krsi_hdr', 'comm'));
  return b;
}

test('kernel dev encoding <-> st_dev (stat -c %d)', () => {
  assert.equal(devFromKernel((8 << 20) | 1), 2049); // sda1
  assert.equal(devFromKernel((254 << 20) | 0), 65024);
  assert.equal(devFromKernel(300), 1048620); // 0:300, a minor above 255
  for (const k of [0, 2049, (259 << 20) | 3, (4095 << 20) | 0xfffff]) assert.equal(devToKernel(devFromKernel(k)), k >>> 0);
  assert.equal(devToKernel(0x801), (8 << 20) | 1);
  assert.equal(devToKernel(45), 45); // 0:45 (tmpfs, overlay anonymous devs)
  // a major and a minor above 255 (259:0x12345)
  const kdev = (259 << 20) | 0x12345;
  assert.equal(devFromKernel(kdev), 0x45 | (259 << 8) | (0x12300 << 12));
  assert.equal(devToKernel(devFromKernel(kdev)), kdev);
  // this machine's root fs round-trips
  const d = statSync('/').dev;
  assert.equal(devFromKernel(devToKernel(d)), d);
});

test('exit status and exe path walk', () => {
  assert.equal(exitCodeFromStatus(3 << 8), 3);
  assert.equal(exitCodeFromStatus(9), 137);
  assert.equal(pathFromWalk('true/bin/usr'), '/usr/bin/true');
  assert.equal(pathFromWalk('c/b/..'), '/.../b/c');
});

test('exec: path, argv, watched env; later events of the pid reuse the exe path', () => {
  const d = new Decoder({ procExe: false });
  const b = record('krsi_exec_event', EV.exec, 4242);
  b.write('true/bin/usr', F('krsi_exec_event', 'exe_path'));
  b.write('/bin/true', F('krsi_exec_event', 'filename'));
  const argv = 'true\0-x\0';
  b.write(argv, F('krsi_exec_event', 'argv'));
  b.writeUInt32LE(argv.length, F('krsi_exec_event', 'argv_len'));
  const env = 'LD_PRELOAD=/tmp/x.so\0';
  b.write(env, F('krsi_exec_event', 'area'));
  b.writeUInt32LE(env.length, F('krsi_exec_event', 'env_len'));
  b.writeUInt32LE(1, F('krsi_hdr', 'exe') + F('krsi_file_id', 'nlink'));
  b.writeUInt32LE(0o100755, F('krsi_exec_event', 'i_mode'));
  b.write('ext4', F('krsi_exec_event', 'fs_type'));
  const e = d.decode(b);
  assert.deepEqual(e, {
    ts: 123456789, pid: 4242, tid: 4242, ppid: 1, uid: 1000, comm: 'evil', cgroup: 0,
    exe: { dev: 2049, ino: 77, path: '/usr/bin/true', nlink: 1, fs: 'ext4', memfd: false, deleted: false, setuid: false, setgid: false },
    type: 'exec', filename: '/bin/true', argv: ['true', '-x'], env: { LD_PRELOAD: '/tmp/x.so' },
  });
  const m = record('krsi_mem_event', EV.mprotect, 4242);
  m.writeBigUInt64LE(0x1000n, F('krsi_mem_event', 'start'));
  m.writeBigUInt64LE(4096n, F('krsi_mem_event', 'len'));
  m.writeUInt32LE(7, F('krsi_mem_event', 'prot'));
  const me = d.decode(m);
  assert.equal(me?.type, 'mprotect');
  assert.equal(me?.exe.path, '/usr/bin/true');
  assert.deepEqual([me?.start, me?.len, me?.prot], [0x1000, 4096, 7]);
});

/** an exec record of exactly its used length: fixed part, then env strings, then the ld.so block */
function execRecord(o: { walk?: string; flags?: number; env?: string[]; ldso?: string[]; mode?: number; nlink?: number }): Buffer {
  const full = record('krsi_exec_event', EV.exec, 4300);
  full.write(o.walk ?? 'true/bin/usr', F('krsi_exec_event', 'exe_path'));
  full.write('/bin/true', F('krsi_exec_event', 'filename'));
  full.writeUInt32LE(o.flags ?? 0, F('krsi_exec_event', 'flags'));
  full.writeUInt32LE(o.mode ?? 0o100755, F('krsi_exec_event', 'i_mode'));
  full.writeUInt32LE(o.nlink ?? 1, F('krsi_hdr', 'exe') + F('krsi_file_id', 'nlink'));
  const env = (o.env ?? []).map((s) => s + '\0').join('');
  const ldso = (o.ldso ?? []).map((s) => s + '\0').join('');
  full.write(env + ldso, F('krsi_exec_event', 'area'));
  full.writeUInt32LE(Buffer.byteLength(env), F('krsi_exec_event', 'env_len'));
  full.writeUInt32LE(Buffer.byteLength(ldso), F('krsi_exec_event', 'ldso_len'));
  return full.subarray(0, F('krsi_exec_event', 'area') + Buffer.byteLength(env + ldso));
}

test('exec env: every occurrence recorded; LD_* and GLIBC_TUNABLES take the last, others the first; duplicates flagged', () => {
  const d = new Decoder({ procExe: false });
  const e = d.decode(execRecord({ env: ['LD_PRELOAD=/usr/libexec/coreutils/libstdbuf.so', 'PYTHONPATH=/opt/a', 'LD_PRELOAD=/tmp/evil.so', 'PYTHONPATH=/tmp', 'GLIBC_TUNABLES=a=1', 'GLIBC_TUNABLES=b=2', 'X=a=b'] }));
  assert.ok(e?.type === 'exec');
  assert.deepEqual(e.env, { LD_PRELOAD: '/tmp/evil.so', PYTHONPATH: '/opt/a', GLIBC_TUNABLES: 'b=2', X: 'a=b' });
  assert.deepEqual(e.env_dup, ['LD_PRELOAD', 'PYTHONPATH', 'GLIBC_TUNABLES']);
  assert.deepEqual(e.env_all?.LD_PRELOAD, ['/usr/libexec/coreutils/libstdbuf.so', '/tmp/evil.so']);
  assert.equal(e.env_truncated, undefined);
  for (const f of [KRSI_EXEC.ENV_CUT, KRSI_EXEC.ENV_FULL, KRSI_EXEC.ENV_STRINGS]) {
    const t = d.decode(execRecord({ flags: f, env: ['LD_PRELOAD=/x'] }));
    assert.equal(t?.type === 'exec' && t.env_truncated, true, `flag ${f}`);
  }
});

test('exec facts: memfd path as the kernel names it (slashes in the name kept), deleted, setuid/setgid', () => {
  const d = new Decoder({ procExe: false });
  const m = d.decode(execRecord({ walk: 'memfd:x/../y', flags: KRSI_EXEC.MEMFD | KRSI_EXEC.DELETED | KRSI_EXEC.PSEUDO, nlink: 0 }));
  assert.deepEqual(m?.exe, { dev: 2049, ino: 77, path: '/memfd:x/../y (deleted)', nlink: 0, fs: '', memfd: true, deleted: true, setuid: false, setgid: false });
  const u = d.decode(execRecord({ walk: 'x/tmp', flags: KRSI_EXEC.DELETED, nlink: 0, mode: 0o104755 }));
  assert.deepEqual(u?.exe, { dev: 2049, ino: 77, path: '/tmp/x (deleted)', nlink: 0, fs: '', memfd: false, deleted: true, setuid: true, setgid: false });
  // S_ISGID without group execute is mandatory locking, not setgid
  assert.equal((d.decode(execRecord({ mode: 0o102755 }))?.exe as { setgid?: boolean }).setgid, true);
  assert.equal((d.decode(execRecord({ mode: 0o102745 }))?.exe as { setgid?: boolean }).setgid, false);
});

test('exec ldso: options of a program without interpreter, last --preload, every --audit; a static program with none has no ldso', () => {
  const d = new Decoder({ procExe: false });
  const e = d.decode(execRecord({ walk: 'ld-linux-x86-64.so.2/lib64', flags: KRSI_EXEC.NO_INTERP | KRSI_EXEC.ARGV_TRUNC, ldso: ['--preload', '/ok.so', '--audit', '/a.so', '--list', '--preload=/tmp/evil.so', '--audit', '/b.so', '--library-path', '/tmp', '/bin/true'] }));
  assert.ok(e?.type === 'exec');
  assert.deepEqual(e.ldso, { preload: '/tmp/evil.so', audit: '/a.so:/b.so', library_path: '/tmp', program: '/bin/true' });
  assert.equal(e.argv_truncated, true);
  const st = d.decode(execRecord({ walk: 'busybox/bin', flags: KRSI_EXEC.NO_INTERP, ldso: ['sh'] }));
  assert.equal(st?.type === 'exec' && st.ldso, undefined);
  // the loader without options (running a program through it) still says so
  const plain = d.decode(execRecord({ walk: 'ld-linux-x86-64.so.2/lib64', flags: KRSI_EXEC.NO_INTERP | KRSI_EXEC.LDSO_TRUNC, ldso: ['./prog'] }));
  assert.deepEqual(plain?.type === 'exec' && plain.ldso, { program: './prog', truncated: true });
  // a dynamic program's block is never read (the kernel copies none): no ldso
  assert.equal((d.decode(execRecord({ ldso: ['--preload', '/x'] })) as { ldso?: unknown }).ldso, undefined);
});

test('exec records: the string area must lie inside the record and the area bound (hostile lengths are counted, not thrown)', () => {
  const d = new Decoder({ procExe: false });
  const r = Buffer.from(execRecord({ env: ['LD_PRELOAD=/x'] }));
  r.writeUInt32LE(r.length, F('krsi_exec_event', 'env_len'));
  assert.equal(d.decode(r), undefined);
  r.writeUInt32LE(KRSI_ENV_AREA, F('krsi_exec_event', 'env_len'));
  r.writeUInt32LE(0xffffffff, F('krsi_exec_event', 'ldso_len'));
  assert.equal(d.decode(r), undefined);
  assert.equal(d.bad, 2);
});

test('mprotect and mmap: effective prot, reqprot, and the region facts from the mem bits (issue 11)', () => {
  const d = new Decoder({ procExe: false });
  const m = record('krsi_mem_event', EV.mprotect, 7);
  m.writeUInt32LE(7, F('krsi_mem_event', 'prot'));
  m.writeUInt32LE(3, F('krsi_mem_event', 'reqprot'));
  m.writeUInt32LE(KRSI_MEM.WX | KRSI_MEM.EXEC_ADDED, F('krsi_mem_event', 'mem'));
  m.writeUInt32LE(3, F('krsi_mem_event', 'old_prot'));
  const me = d.decode(m) as Record<string, unknown>;
  assert.deepEqual([me.type, me.prot, me.reqprot, me.wx, me.exec_added, me.flip, me.old_prot], ['mprotect', 7, 3, true, true, undefined, 3]);
  m.writeUInt32LE(KRSI_MEM.UNKNOWN | KRSI_MEM.WX | KRSI_MEM.FLIP, F('krsi_mem_event', 'mem'));
  const mu = d.decode(m) as Record<string, unknown>;
  assert.deepEqual([mu.flip, mu.regions_unknown, mu.old_prot], [true, true, undefined]);
  const a = record('krsi_mem_event', EV.mmap, 7);
  a.writeUInt32LE(5, F('krsi_mem_event', 'prot'));
  a.writeUInt32LE(0x22, F('krsi_mem_event', 'flags'));
  a.writeUInt32LE(KRSI_MEM.EXEC_ADDED | KRSI_MEM.SHMEM, F('krsi_mem_event', 'mem'));
  a.writeInt32LE(-1, F('krsi_mem_event', 'ret'));
  a.writeBigUInt64LE(99n, F('krsi_mem_event', 'file') + F('krsi_file_id', 'ino'));
  const ae = d.decode(a) as Record<string, unknown>;
  assert.deepEqual([ae.type, ae.wx, ae.flags, ae.shmem, ae.anon, ae.ret, (ae.file as { ino: number }).ino], ['mmap', false, 0x22, true, undefined, -1, 99]);
});

test('unlink: target only when resolved; short and unknown records are counted, not thrown', () => {
  const d = new Decoder({ procExe: false });
  const u = record('krsi_unlink_event', EV.unlink, 5);
  u.write('/tmp/me', F('krsi_unlink_event', 'path'));
  assert.equal(d.decode(u)?.target, undefined);
  u.writeBigUInt64LE(77n, F('krsi_unlink_event', 'target'));
  u.writeUInt32LE((8 << 20) | 1, F('krsi_unlink_event', 'target') + F('krsi_file_id', 'dev'));
  // a link count the signal did not see stays absent (never 0 by default), and so does the result
  assert.deepEqual(d.decode(u)?.target, { dev: 2049, ino: 77 });
  assert.equal((d.decode(u) as { unconfirmed?: boolean }).unconfirmed, true);
  u.writeUInt32LE(KRSI_FILE_NLINK | KRSI_FILE_RET, F('krsi_unlink_event', 'flags'));
  assert.deepEqual(d.decode(u)?.target, { dev: 2049, ino: 77, nlink: 0 });
  assert.equal((d.decode(u) as { unconfirmed?: boolean }).unconfirmed, undefined);
  assert.equal(d.decode(Buffer.alloc(10)), undefined);
  assert.equal(d.decode(record('krsi_hdr', 99, 5)), undefined);
  assert.equal(d.decode(record('krsi_hdr', EV.exec, 5)), undefined);
  assert.equal(d.bad, 3);
});

test('rename and truncate share the unlink record: from, route, the processes running the target', () => {
  const d = new Decoder({ procExe: false });
  const r = record('krsi_unlink_event', EV.rename, 5);
  r.write('x', F('krsi_unlink_event', 'path'));
  r.write('x.new', F('krsi_unlink_event', 'path2'));
  r.writeBigUInt64LE(77n, F('krsi_unlink_event', 'target'));
  r.writeUInt32LE((8 << 20) | 1, F('krsi_unlink_event', 'target') + F('krsi_file_id', 'dev'));
  r.writeUInt32LE(KRSI_FILE_NLINK | KRSI_FILE_RET, F('krsi_unlink_event', 'flags'));
  r.writeUInt32LE(KRSI_ROUTE.LSM, F('krsi_unlink_event', 'route'));
  r.writeUInt32LE(10, F('krsi_unlink_event', 'running'));
  r.writeUInt32LE(KRSI_RUNNER.OTHER, F('krsi_unlink_event', 'runner'));
  r.writeUInt32LE(42, F('krsi_unlink_event', 'pids'));
  r.writeUInt32LE(43, F('krsi_unlink_event', 'pids') + 12);
  const { ts, pid, ppid, uid, comm, exe, tid, cgroup, ...rest } = d.decode(r)!;
  assert.equal(pid, 5);
  assert.deepEqual(rest, {
    type: 'rename', path: 'x', from: 'x.new', target: { dev: 2049, ino: 77, nlink: 0 }, route: 'lsm', running: { count: 10, pids: [42, 43], by: 'other' },
  });
  const t = record('krsi_unlink_event', EV.truncate, 5);
  t.writeInt32LE(-26, F('krsi_unlink_event', 'ret'));
  t.writeUInt32LE(KRSI_FILE_RET, F('krsi_unlink_event', 'flags'));
  t.writeUInt32LE(KRSI_ROUTE.SYSCALL, F('krsi_unlink_event', 'route'));
  const te = d.decode(t)!;
  assert.deepEqual([te.type, (te as { ret?: number }).ret, (te as { route?: string }).route, (te as { target?: unknown }).target], ['truncate', -26, 'syscall', undefined]);
});

test('exit: reported once per process, again after the pid is reused by a fork', () => {
  const d = new Decoder({ procExe: false });
  const exit = record('krsi_exit_event', EV.exit, 9);
  assert.equal(d.decode(exit)?.type, 'exit');
  assert.equal(d.decode(exit), undefined, 'a second thread seeing the group gone');
  const fork = record('krsi_fork_event', EV.fork, 1);
  fork.writeUInt32LE(9, F('krsi_fork_event', 'child_pid'));
  d.decode(fork);
  assert.equal(d.decode(exit)?.type, 'exit');
  assert.equal(d.bad, 0);
});

test('decodeAt: records in place in one larger Buffer (any offset) decode as their own Buffers do', () => {
  const exec = record('krsi_exec_event', EV.exec, 4242);
  exec.write('true/bin/usr', F('krsi_exec_event', 'exe_path'));
  exec.write('/bin/true', F('krsi_exec_event', 'filename'));
  exec.write('true\0', F('krsi_exec_event', 'argv'));
  exec.writeUInt32LE(5, F('krsi_exec_event', 'argv_len'));
  const m = record('krsi_mem_event', EV.mprotect, 4242);
  m.writeBigUInt64LE(0x7f0000001000n, F('krsi_mem_event', 'start'));
  m.writeUInt32LE(5, F('krsi_mem_event', 'prot'));
  const u = record('krsi_unlink_event', EV.unlink, 4242);
  u.write('/tmp/me', F('krsi_unlink_event', 'path'));
  u.writeInt32LE(-2, F('krsi_unlink_event', 'ret'));
  u.writeUInt32LE(KRSI_FILE_RET, F('krsi_unlink_event', 'flags'));
  // a full-length comm (no NUL) followed by non-zero bytes: the string stops at 16 bytes
  const f = record('krsi_fork_event', EV.fork, 4242);
  f.write('abcdefghijklmnop', F('krsi_hdr', 'comm'));
  f.writeUInt32LE(0xffffffff, F('krsi_fork_event', 'child_pid'));
  const recs = [exec, m, u, f, m];
  // 3 junk bytes first: offsets that are not 4-aligned
  const ring = Buffer.concat([Buffer.from([1, 2, 3]), ...recs, Buffer.alloc(8, 0xff)]);
  const a = new Decoder({ procExe: false });
  const b = new Decoder({ procExe: false });
  let o = 3;
  for (const r of recs) {
    assert.deepEqual(b.decodeAt(ring, o, r.length), a.decode(r));
    o += r.length;
  }
  assert.equal(b.decodeAt(ring, 3 + exec.length, 4)?.comm, undefined);
  assert.equal(b.decodeAt(ring, 3, LAYOUTS.krsi_exec_event.fields.area - 1), undefined, 'the length given counts, not the Buffer');
  assert.equal(b.bad, 2);
  assert.equal(a.decode(f)?.comm, 'abcdefghijklmnop');
  const ev = a.decode(u);
  assert.deepEqual(Object.keys(ev!), ['ts', 'pid', 'ppid', 'uid', 'comm', 'exe', 'tid', 'cgroup', 'type', 'path', 'ret']);
});

test('exit of a pid never seen does not push another pid out of the remembered exe paths', () => {
  const d = new Decoder({ procExe: false, maxPids: 2 });
  for (const [pid, walk] of [[1, 'a'], [2, 'b']] as const) {
    const b = record('krsi_exec_event', EV.exec, pid);
    b.write(walk, F('krsi_exec_event', 'exe_path'));
    d.decode(b);
  }
  d.decode(record('krsi_exit_event', EV.exit, 3));
  const fork = record('krsi_fork_event', EV.fork, 1);
  fork.writeUInt32LE(5, F('krsi_fork_event', 'child_pid'));
  assert.equal(d.decode(fork)?.exe.path, '/a');
});

/** a struct krsi_denied_event as enforce.bpf.c's deny() and protect.bpf.c's tamper() write it */
function denied(o: { op: number; reason: number; rule_id?: number; enforced?: number; kdev?: number; ino?: number }, pid = 321): Buffer {
  const b = record('krsi_denied_event', EV.denied, pid);
  b.writeUInt32LE(322, F('krsi_hdr', 'tid'));
  b.writeBigUInt64LE(5n, F('krsi_hdr', 'cgroup'));
  b.writeUInt32LE(o.op, F('krsi_denied_event', 'op'));
  b.writeUInt32LE(o.reason, F('krsi_denied_event', 'reason'));
  b.writeUInt32LE(o.rule_id ?? 0, F('krsi_denied_event', 'rule_id'));
  b.writeUInt32LE(o.enforced ?? 1, F('krsi_denied_event', 'enforced'));
  b.writeBigUInt64LE(BigInt(o.ino ?? 0), F('krsi_denied_event', 'inode') + F('krsi_inode_key', 'ino'));
  b.writeUInt32LE(o.kdev ?? 0, F('krsi_denied_event', 'inode') + F('krsi_inode_key', 'dev'));
  return b;
}

const { EXEC, MPROTECT_EXEC, MODULE_LOAD, TAMPER } = KRSI_OP;
const R = KRSI_DENY;
const SDA1 = (8 << 20) | 1; // kernel dev_t of 8:1, st_dev 2049

/** every record the kernel writes, with the op, reason and key signals/EVENTS.md documents for it */
const CASES: [string, Parameters<typeof denied>[0], { op: string; reason: string; key: Record<string, unknown>; enforced?: boolean }][] = [
  ['exec of a denied binary', { op: EXEC, reason: R.INODE, rule_id: 3, kdev: SDA1, ino: 1234 }, { op: 'exec', reason: 'INODE', key: { dev: 2049, ino: 1234 } }],
  ['exec by a denied tgid (the file is in the record, the key is the pid)', { op: EXEC, reason: R.TGID, rule_id: 4, kdev: SDA1, ino: 1234 }, { op: 'exec', reason: 'TGID', key: { pid: 321 } }],
  ['mprotect by a denied tgid', { op: MPROTECT_EXEC, reason: R.TGID, rule_id: 4 }, { op: 'mprotect_exec', reason: 'TGID', key: { pid: 321 } }],
  ['mprotect over the counter, monitor mode', { op: MPROTECT_EXEC, reason: R.MPROTECT_LIMIT, enforced: 0 }, { op: 'mprotect_exec', reason: 'MPROTECT_LIMIT', key: { counter: 'mprotect_limit', pid: 321 }, enforced: false }],
  ['a denied module file', { op: MODULE_LOAD, reason: R.INODE, rule_id: 5, kdev: SDA1, ino: 77 }, { op: 'module_load', reason: 'INODE', key: { dev: 2049, ino: 77 } }],
  ['a module file on the denylist', { op: MODULE_LOAD, reason: R.MODULE_DENY, kdev: SDA1, ino: 77 }, { op: 'module_load', reason: 'MODULE_DENY', key: { dev: 2049, ino: 77 } }],
  ['a module file off the allowlist', { op: MODULE_LOAD, reason: R.MODULE_ALLOW, kdev: SDA1, ino: 77 }, { op: 'module_load', reason: 'MODULE_ALLOW', key: { dev: 2049, ino: 77 } }],
  ['a module from memory, allowlist on', { op: MODULE_LOAD, reason: R.MODULE_ALLOW }, { op: 'module_load', reason: 'MODULE_ALLOW', key: { module: '(from memory)' } }],
  ['the memory fallback of a refused module file', { op: MODULE_LOAD, reason: R.INODE, rule_id: 5 }, { op: 'module_load', reason: 'INODE', key: { module: '(from memory)' } }],
  ['an allowlisted module file rewritten in place', { op: MODULE_LOAD, reason: R.MODULE_CHANGED, kdev: SDA1, ino: 77 }, { op: 'module_load', reason: 'MODULE_CHANGED', key: { dev: 2049, ino: 77 } }],
  ['kexec_file_load, allowlist on', { op: MODULE_LOAD, reason: R.KEXEC, kdev: SDA1, ino: 78 }, { op: 'module_load', reason: 'KEXEC', key: { dev: 2049, ino: 78 } }],
  ['kexec_load, allowlist on', { op: MODULE_LOAD, reason: R.KEXEC }, { op: 'module_load', reason: 'KEXEC', key: { load: '(from memory)' } }],
  ['a kernel_load_data id krsi does not know, allowlist on', { op: MODULE_LOAD, reason: R.READ_ID }, { op: 'module_load', reason: 'READ_ID', key: { load: '(from memory)' } }],
  ['a module load by a denied tgid', { op: MODULE_LOAD, reason: R.TGID, rule_id: 4, kdev: SDA1, ino: 77 }, { op: 'module_load', reason: 'TGID', key: { pid: 321 } }],
  ['tamper: a map fd', { op: TAMPER, reason: R.TAMPER_MAP, ino: 41, kdev: 3 }, { op: 'tamper', reason: 'TAMPER_MAP', key: { map_id: 41, fmode: 3 } }],
  ['tamper: a link', { op: TAMPER, reason: R.TAMPER_LINK, ino: 7, kdev: 34 }, { op: 'tamper', reason: 'TAMPER_LINK', key: { link_id: 7, cmd: 34 } }],
  ['tamper: a pin', { op: TAMPER, reason: R.TAMPER_PIN, ino: 1234, kdev: SDA1 }, { op: 'tamper', reason: 'TAMPER_PIN', key: { dev: 2049, ino: 1234 } }],
  ['tamper: umount', { op: TAMPER, reason: R.TAMPER_MOUNT, kdev: SDA1 }, { op: 'tamper', reason: 'TAMPER_MOUNT', key: { dev: 2049 } }],
  ['tamper: ptrace', { op: TAMPER, reason: R.TAMPER_PTRACE, ino: 300, kdev: 0x12 }, { op: 'tamper', reason: 'TAMPER_PTRACE', key: { target: 300, mode: 0x12 } }],
  ['tamper: a stopping signal, reported only', { op: TAMPER, reason: R.TAMPER_SIGNAL, ino: 300, kdev: 19, enforced: 0 }, { op: 'tamper', reason: 'TAMPER_SIGNAL', key: { target: 300, signal: 19 }, enforced: false }],
  ['kill: a process under a kill verdict reached a guarded hook', { op: 16, reason: R.TGID }, { op: 'kill', reason: 'TGID', key: { pid: 321 } }],
  ['values this decoder does not know', { op: 32, reason: 99, kdev: SDA1, ino: 9 }, { op: 'op32', reason: 'reason99', key: { dev: 2049, ino: 9 } }],
];

test('denied: one decoder, the same event through signals\' Decoder and the enforcer\'s ring (enforcers/maps.ts)', () => {
  assert.equal(maps.decodeDenied, decodeDenied, 'the enforcer reads its ring with bpf/abi.ts decodeDenied');
  for (const [what, rec, want] of CASES) {
    const b = denied(rec);
    const ring = maps.decodeDenied(b);
    const log = new Decoder({ procExe: false }).decode(b);
    assert.deepEqual(ring, {
      ts: 123456789, type: 'denied', pid: 321, ppid: 1, uid: 1000, comm: 'evil', exe: { dev: 2049, ino: 77, path: '' }, tid: 322, cgroup: 5,
      op: want.op, key: want.key, reason: want.reason, rule_id: rec.rule_id ?? 0, enforced: want.enforced ?? true,
    }, what);
    // the same object, the same JSON line (key order included)
    assert.equal(JSON.stringify(log), JSON.stringify(ring), what);
  }
});

test('denied: in place in a ring at any offset; the Decoder adds the exe path it remembers, the enforcer its rule name', () => {
  const exec = record('krsi_exec_event', EV.exec, 321);
  exec.write('vuln/bin/usr', F('krsi_exec_event', 'exe_path'));
  const recs = CASES.map(([, rec]) => denied(rec));
  const ring = Buffer.concat([Buffer.from([1, 2, 3]), exec, ...recs]);
  const d = new Decoder({ procExe: false });
  let o = 3;
  assert.equal(d.decodeAt(ring, o, exec.length)?.exe.path, '/usr/bin/vuln');
  o += exec.length;
  for (const r of recs) {
    const ev = decodeDenied(r)!;
    assert.deepEqual(d.decodeAt(ring, o, r.length), { ...ev, exe: { ...ev.exe, path: '/usr/bin/vuln' } });
    o += r.length;
  }
  assert.equal(d.bad, 0);
  const named = maps.decodeDenied(denied(CASES[0][1]), (id) => (id === 3 ? 'vuln-bin' : undefined))!;
  assert.equal(named.rule, 'vuln-bin');
  assert.equal(Object.keys(named).at(-1), 'rule');
  // too short, or not a denied record: both paths refuse it
  const short = denied(CASES[0][1]).subarray(0, LAYOUTS.krsi_denied_event.size - 1);
  assert.equal(maps.decodeDenied(short), undefined);
  assert.equal(d.decode(short), undefined);
  assert.equal(maps.decodeDenied(record('krsi_denied_event', EV.exec, 5)), undefined);
});

test('module_load: the file a module was read from (finit_module) and its path; none from memory', () => {
  const b = record('krsi_module_event', EV.module_load, 4122);
  b.write('dummy', F('krsi_module_event', 'name'));
  const d = new Decoder();
  const none = d.decodeAt(b, 0, b.length) as Record<string, unknown>;
  assert.equal(none.name, 'dummy');
  assert.equal(none.file, undefined);
  assert.equal(none.path, undefined);
  b.writeBigUInt64LE(5000200n, F('krsi_module_event', 'file') + F('krsi_file_id', 'ino'));
  b.writeUInt32LE((8 << 20) | 1, F('krsi_module_event', 'file') + F('krsi_file_id', 'dev'));
  b.write('dummy.ko/.x/tmp', F('krsi_module_event', 'path')); // the walk writes the leaf first
  const f = d.decodeAt(b, 0, b.length) as Record<string, unknown>;
  assert.deepEqual([f.file, f.path], [{ dev: 2049, ino: 5000200 }, '/tmp/.x/dummy.ko']);
});
