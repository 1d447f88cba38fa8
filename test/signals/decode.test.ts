// The ring buffer decoder on hand-built records laid out as bpf/krsi.h says (offsets from LAYOUTS).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decoder, EV, LAYOUTS, devFromKernel, devToKernel, exitCodeFromStatus, pathFromWalk } from '../../signals/decode.ts';

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
  b.writeUInt32LE(1, F('krsi_exec_event', 'env_count'));
  b.write('LD_PRELOAD', F('krsi_exec_event', 'env') + F('krsi_env_var', 'name'));
  b.write('/tmp/x.so', F('krsi_exec_event', 'env') + F('krsi_env_var', 'value'));
  const e = d.decode(b);
  assert.deepEqual(e, {
    ts: 123456789, pid: 4242, tid: 4242, ppid: 1, uid: 1000, comm: 'evil', cgroup: 0,
    exe: { dev: 2049, ino: 77, path: '/usr/bin/true' },
    type: 'exec', filename: '/bin/true', argv: ['true', '-x'], env: { LD_PRELOAD: '/tmp/x.so' },
  });
  const m = record('krsi_mprotect_event', EV.mprotect, 4242);
  m.writeBigUInt64LE(0x1000n, F('krsi_mprotect_event', 'start'));
  m.writeBigUInt64LE(4096n, F('krsi_mprotect_event', 'len'));
  m.writeUInt32LE(7, F('krsi_mprotect_event', 'prot'));
  const me = d.decode(m);
  assert.equal(me?.type, 'mprotect');
  assert.equal(me?.exe.path, '/usr/bin/true');
  assert.deepEqual([me?.start, me?.len, me?.prot], [0x1000, 4096, 7]);
});

test('unlink: target only when resolved; short and unknown records are counted, not thrown', () => {
  const d = new Decoder({ procExe: false });
  const u = record('krsi_unlink_event', EV.unlink, 5);
  u.write('/tmp/me', F('krsi_unlink_event', 'path'));
  assert.equal(d.decode(u)?.target, undefined);
  u.writeBigUInt64LE(77n, F('krsi_unlink_event', 'target'));
  u.writeUInt32LE((8 << 20) | 1, F('krsi_unlink_event', 'target') + F('krsi_file_id', 'dev'));
  assert.deepEqual(d.decode(u)?.target, { dev: 2049, ino: 77, nlink: 0 });
  assert.equal(d.decode(Buffer.alloc(10)), undefined);
  assert.equal(d.decode(record('krsi_hdr', 99, 5)), undefined);
  assert.equal(d.decode(record('krsi_hdr', EV.exec, 5)), undefined);
  assert.equal(d.bad, 3);
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
  const m = record('krsi_mprotect_event', EV.mprotect, 4242);
  m.writeBigUInt64LE(0x7f0000001000n, F('krsi_mprotect_event', 'start'));
  m.writeUInt32LE(5, F('krsi_mprotect_event', 'prot'));
  const u = record('krsi_unlink_event', EV.unlink, 4242);
  u.write('/tmp/me', F('krsi_unlink_event', 'path'));
  u.writeInt32LE(-2, F('krsi_unlink_event', 'ret'));
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
  assert.equal(b.decodeAt(ring, 3, LAYOUTS.krsi_exec_event.size - 1), undefined, 'the length given counts, not the Buffer');
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
