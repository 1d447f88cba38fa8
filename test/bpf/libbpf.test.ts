// bpf/libbpf.ts against the real kernel: a fixture with a ring buffer, a hash map, const volatile
// globals and a tracepoint on getppid() that only fires for tgids listed in its `targets` map.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync, rmdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { needLiveBpf } from '../helpers/prereq.ts';
import { ensureObject } from '../../bpf/build.ts';
import { BpfError, BpfMap, BpfObject, BPF_NOEXIST, PIN_ROOT, RingBuffer, createMap, unpinPath } from '../../bpf/libbpf.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/basic.bpf.c', import.meta.url));
const LIBBPF_TS = fileURLToPath(new URL('../../bpf/libbpf.ts', import.meta.url));
const BUILD_TS = fileURLToPath(new URL('../../bpf/build.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// run a snippet in a fresh node (tsx) process; `lib` and `build` are the two modules
function runSnippet(body: string, o: { env?: Record<string, string> } = {}) {
  const code = `const lib = await import(${JSON.stringify(LIBBPF_TS)}); const build = await import(${JSON.stringify(BUILD_TS)});\n${body}`;
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8', cwd: ROOT, timeout: 30000, env: { ...process.env, ...o.env } });
}
const MAGIC = 0x6b727369_00c0ffeen;
const BURST = 4;
const skip = needLiveBpf();

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};

interface Rec { magic: bigint; tgid: number; seq: number; i: number }
const parse = (d: Buffer): Rec => ({ magic: d.readBigUInt64LE(0), tgid: d.readUInt32LE(8), seq: d.readUInt32LE(12), i: d.readUInt32LE(16) });

describe('libbpf binding', { skip }, () => {
  let obj: BpfObject | undefined;
  const pinDir = `${PIN_ROOT}/test-libbpf-${process.pid}`;

  before(() => {
    obj = BpfObject.open(ensureObject(FIXTURE));
    obj.setGlobal('magic', u64(MAGIC));
    obj.setGlobal('burst', u32(BURST));
    obj.setMaxEntries('events', 4 << 20);
    obj.load();
    obj.attach();
  });

  after(() => {
    obj?.close();
    rmSync(pinDir, { recursive: true, force: true });
    // and PIN_ROOT itself when this test created it (nothing else is pinned there)
    try {
      rmdirSync(PIN_ROOT);
    } catch {
      // not empty (a krsi pinned there) or already gone
    }
  });

  test('setGlobal knows the object globals and refuses unknown or oversized ones', () => {
    const o = BpfObject.open(ensureObject(FIXTURE));
    try {
      assert.deepEqual(o.globalNames().sort(), ['burst', 'calls', 'magic']);
      assert.throws(() => o.setGlobal('nope', u32(1)), /no global variable 'nope'.*have: /);
      assert.throws(() => o.setGlobal('burst', u64(1n)), /8 bytes given, the variable has 4/);
    } finally {
      o.close();
    }
  });

  test('a child process getppid() calls arrive through the ring buffer with the globals set', { timeout: 20000 }, async () => {
    const calls = 5;
    const got: Rec[] = [];
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const rb = new RingBuffer((d, source) => {
      assert.equal(source, 0);
      got.push(parse(d));
      if (got.length === calls * BURST) done();
    });
    rb.add(obj!.map('events'));
    rb.start();
    const targets = obj!.map('targets');
    const child = spawn(process.execPath, ['-e', `process.stdout.write(process.pid + '\\n'); process.stdin.once('data', () => { for (let i = 0; i < ${calls}; i++) process.ppid; process.exit(0); });`], { stdio: ['pipe', 'pipe', 'inherit'] });
    let key: Buffer | undefined;
    try {
      const pid = await new Promise<number>((r) => child.stdout.once('data', (d) => r(Number(String(d).trim()))));
      key = u32(pid);
      targets.update(key, u64(0n), BPF_NOEXIST);
      child.stdin.write('go\n');
      await all;
      assert.equal(got.length, calls * BURST);
      for (const [n, r] of got.entries()) {
        assert.equal(r.magic, MAGIC);
        assert.equal(r.tgid, pid);
        assert.equal(r.seq, Math.floor(n / BURST));
        assert.equal(r.i, n % BURST);
      }
      // the program counted the calls in the map
      assert.equal(targets.lookup(key)?.readBigUInt64LE(0), BigInt(calls));
    } finally {
      child.kill();
      if (key) targets.delete(key);
      await rb.stop();
    }
  });

  test('map update / lookup / delete / keys', () => {
    const m = obj!.map('targets');
    assert.equal(m.keySize, 4);
    assert.equal(m.valueSize, 8);
    const keys = [0x7ffffff1, 0x7ffffff2, 0x7ffffff3].map(u32);
    try {
      for (const [i, k] of keys.entries()) m.update(k, u64(BigInt(i + 10)));
      assert.equal(m.lookup(keys[1])?.readBigUInt64LE(0), 11n);
      assert.equal(m.lookup(u32(0x7ffffff9)), undefined);
      const seen = [...m.keys()].map((k) => k.readUInt32LE(0)).filter((k) => k >= 0x7ffffff0).sort();
      assert.deepEqual(seen, [0x7ffffff1, 0x7ffffff2, 0x7ffffff3]);
      assert.equal(m.delete(keys[0]), true);
      assert.equal(m.delete(keys[0]), false);
      assert.equal(m.lookup(keys[0]), undefined);
    } finally {
      for (const k of keys) m.delete(k);
    }
  });

  test('BpfError carries errno, op and libbpf_strerror text', () => {
    const m = obj!.map('targets');
    const e = (() => {
      try {
        m.update(u32(0x7fffff00), u64(1n), 2 /* BPF_EXIST on a missing key */);
      } catch (err) {
        return err;
      }
    })();
    assert.ok(e instanceof BpfError);
    assert.equal(e.errno, 2);
    assert.match(e.op, /bpf_map_update_elem targets/);
    assert.match(e.message, /No such file or directory/);
    assert.throws(() => m.update(u32(1), u32(1)), /value of 4 bytes.*value size is 8/);
    assert.throws(() => BpfObject.open('/etc/hostname'), (err: unknown) => err instanceof BpfError && /BPF object format invalid/.test(err.message));
    assert.throws(() => createMap(27, 'krsi_bad_rb', 0, 0, 4095), (err: unknown) => err instanceof BpfError && err.errno === 22 && /Invalid argument/.test(err.message));
  });

  test('libbpf log lines reach the krsi logger with the libbpf prefix and level', () => {
    const r = runSnippet(`try { lib.BpfObject.open('/etc/hostname'); } catch (e) { process.stdout.write(e.message); }`);
    assert.match(r.stdout, /BPF object format invalid/);
    const line = r.stderr.split('\n').find((l) => l.includes('not a proper ELF object'));
    assert.ok(line, r.stderr);
    const j = JSON.parse(line);
    assert.equal(j.component, 'libbpf');
    assert.equal(j.level, 40); // LIBBPF_WARN -> warn
    assert.doesNotMatch(j.msg, /^libbpf: /);
  });

  test('a verifier rejection: EACCES, and the verifier log in the logger even past the print buffer', () => {
    const reject = fileURLToPath(new URL('./fixtures/reject.bpf.c', import.meta.url));
    const r = runSnippet(`
      const o = lib.BpfObject.open(build.ensureObject(${JSON.stringify(reject)}));
      try { o.load(); } catch (e) { process.stdout.write(e.constructor.name + '|' + e.errno + '|' + e.message); } finally { o.close(); }`,
    { env: { KRSI_LIBBPF_PRINT_BUF: '64' } });
    assert.match(r.stdout, /^BpfError\|13\|bpf_object__load .*reject\.o: Permission denied/);
    const msgs = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)).filter((j) => j.component === 'libbpf').map((j) => j.msg);
    assert.ok(msgs.includes('-- END PROG LOAD LOG --'), msgs.join('\n'));
    assert.ok(msgs.some((m: string) => /R0 invalid mem access 'scalar'/.test(m)), msgs.join('\n'));
  });

  test('per-CPU maps: lookups return one 8-byte slot per possible CPU', () => {
    const m = createMap(6 /* PERCPU_ARRAY */, 'krsi_t_pcpu', 4, 4, 2);
    try {
      const v = m.lookup(u32(1));
      assert.ok(v && v.length >= 8 && v.length % 8 === 0);
      assert.equal(v.length, m.valueBufferSize);
      const w = Buffer.alloc(m.valueBufferSize);
      w.writeUInt32LE(7, 0);
      m.update(u32(1), w);
      assert.equal(m.lookup(u32(1))?.readUInt32LE(0), 7);
    } finally {
      m.close();
    }
  });

  test('the process exits by itself after RingBuffer.stop() and close()', () => {
    const r = runSnippet(`
      const o = lib.BpfObject.open(build.ensureObject(${JSON.stringify(FIXTURE)}));
      o.load(); o.attach();
      const rb = new lib.RingBuffer(() => {});
      rb.add(o.map('events')); rb.start();
      await new Promise((res) => setTimeout(res, 50));
      await rb.stop(); o.close();
      process.stdout.write('stopped');`);
    assert.equal(r.error, undefined, 'still running after 30 s');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'stopped');
  });

  test('pin, fromPinned, unpin for maps and links', () => {
    const m = obj!.map('targets');
    const path = `${pinDir}/targets`;
    const key = u32(0x7ffffe01);
    let p: BpfMap | undefined;
    try {
      m.pin(path);
      assert.ok(existsSync(path));
      p = BpfMap.fromPinned(path);
      assert.equal(p.keySize, 4);
      assert.equal(p.name, 'targets');
      p.update(key, u64(42n));
      assert.equal(m.lookup(key)?.readBigUInt64LE(0), 42n);
      obj!.pinLink('on_getppid', `${pinDir}/on_getppid`);
      assert.ok(existsSync(`${pinDir}/on_getppid`));
    } finally {
      m.delete(key);
      p?.close();
      m.unpin();
      unpinPath(`${pinDir}/on_getppid`);
    }
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(`${pinDir}/on_getppid`), false);
  });

  // getppid() calls from this process: BURST records each
  const fill = (calls: number) => {
    const targets = obj!.map('targets');
    const key = u32(process.pid);
    targets.update(key, u64(0n));
    try {
      for (let i = 0; i < calls; i++) void process.ppid;
    } finally {
      targets.delete(key);
    }
  };

  test('drainAll delivers everything waiting; stop() from inside onRecord stops cleanly', async () => {
    fill(10);
    let seen = 0;
    const rb = new RingBuffer(() => {
      seen++;
      if (seen === 3) void rb.stop();
    });
    rb.add(obj!.map('events'));
    rb.drainAll();
    assert.equal(seen, 3);
    assert.equal(rb.drainAll(), 0);
    await rb.stop();
    // the 37 left are still in the ring for the next consumer
    const rest = new RingBuffer(() => {});
    rest.add(obj!.map('events'));
    assert.equal(rest.drainAll(), 10 * BURST - 3);
    await rest.stop();
  });

  test('view mode: records in place in the ring (same bytes as the Buffer per record), wrapping included', async () => {
    // enough rounds that records wrap around the end of the ring at least once
    const ringBytes = obj!.map('events').maxEntries;
    const want = Math.ceil((2 * ringBytes) / 64 / BURST);
    const viaBuffer: Rec[] = [];
    const viaView: Rec[] = [];
    let ring: Buffer | undefined;
    for (let done = 0; done < want; done += 100) {
      fill(100);
      const rb = new RingBuffer((d) => viaBuffer.push(parse(d)));
      rb.add(obj!.map('events'));
      rb.drainAll();
      await rb.stop();
      fill(100);
      const rv = new RingBuffer((data, offset, length, source) => {
        assert.equal(source, 0);
        assert.ok(length >= 20 && offset + length <= data.length);
        ring ??= data;
        viaView.push(parse(data.subarray(offset, offset + length)));
      }, { view: true });
      rv.add(obj!.map('events'));
      rv.drainAll();
      await rv.stop();
    }
    assert.ok(ring, 'view records delivered');
    assert.equal(viaView.length, viaBuffer.length);
    assert.equal(viaView.length, Math.ceil(want / 100) * 100 * BURST);
    for (const [n, r] of viaView.entries()) {
      assert.equal(r.magic, MAGIC);
      assert.equal(r.tgid, process.pid);
      assert.equal(r.i, n % BURST);
    }
  });

  test('a throwing onRecord is counted and the drain carries on', { timeout: 20000 }, async () => {
    fill(2);
    let seen = 0;
    let done!: () => void;
    const all = new Promise<void>((r) => (done = r));
    const rb = new RingBuffer(() => {
      seen++;
      if (seen === 2) throw new Error('boom (expected by the test)');
      if (seen === 2 * BURST) done();
    });
    rb.add(obj!.map('events'));
    rb.start();
    try {
      await all;
      assert.equal(rb.errors, 1);
      assert.equal(rb.count, 2 * BURST - 1);
    } finally {
      await rb.stop();
    }
  });

  test('timers keep firing while a burst is drained', { timeout: 20000 }, async () => {
    const targets = obj!.map('targets');
    const key = u32(process.pid);
    const total = 2000 * BURST;
    let count = 0;
    let bad = 0;
    const rb = new RingBuffer((d) => {
      const r = parse(d);
      if (r.tgid !== process.pid || r.magic !== MAGIC) bad++;
      count++;
    }, { budget: 500 });
    rb.add(obj!.map('events'));
    try {
      targets.update(key, u64(0n));
      for (let i = 0; i < total / BURST; i++) void process.ppid; // getppid(): BURST records each
      targets.delete(key);
      const seenByTimer: number[] = [];
      const finished = new Promise<void>((resolve) => {
        const t = setInterval(() => {
          seenByTimer.push(count);
          if (count >= total) {
            clearInterval(t);
            resolve();
          }
        }, 0);
      });
      rb.start();
      await finished;
      assert.equal(count, total);
      assert.equal(bad, 0);
      // some timer ran while records were still waiting: the drain yielded to the event loop
      assert.ok(seenByTimer.some((c) => c > 0 && c < total), `timer saw ${seenByTimer.join(',')}`);
    } finally {
      targets.delete(key);
      await rb.stop();
    }
  });
});

// not root: test/cli/pack.test.ts runs `krsi run` as nobody from the installed package (nobody cannot read a
// checkout in a private directory, such as root's clone in /root)
describe('prerequisite errors', () => {
  test('no libbpf.so.1: the error names the Debian package libbpf1', () => {
    const r = runSnippet(`try { lib.BpfObject.open('/nonexistent.o'); } catch (e) { process.stdout.write(e.message + '|' + e.exitCode); }`, { env: { KRSI_LIBBPF: '/nonexistent/libbpf.so.1' } });
    const msg = process.getuid?.() === 0 ? 'krsi: libbpf.so.1 not found: install the Debian package libbpf1 (apt-get install libbpf1)|3' : 'krsi: needs root (CAP_BPF, CAP_PERFMON)|3';
    assert.equal(r.stdout, msg, r.stderr);
  });
});
