// Hostile and damaged logs through the real CLI (issue 8): each case here crashed krsi with a signal,
// read damage as data or as an empty log, lost events, or left files others could read. Every one
// must now be exit 0 or a located error with exit 1, never a signal.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import type { KrsiEvent } from '../../signals/events.ts';
import { LogWriter, readEvents } from '../../engine/eventlog/index.ts';
import { BLOCK } from '../../engine/eventlog/lmdb.ts';
import { encodeBlock } from '../../engine/eventlog/block.ts';
import { seal } from '../../engine/eventlog/checksum.ts';
import { generateEvents } from '../../bench/gen.ts';
import { needRoot } from '../helpers/prereq.ts';
import { krsiAsync, krsiSync } from '../helpers/krsi.ts';

const INDEX = fileURLToPath(new URL('../../engine/eventlog/index.ts', import.meta.url));
let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-hostile-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const krsi = (...args: string[]) => krsiSync(args);
const gen = (count: number, seed = 1) => [...generateEvents({ count, seed })];
const jsonl = (evs: object[]) => evs.map((e) => JSON.stringify(e) + '\n').join('');

/** exit 1 with a message naming `path` (no signal, no stack trace) */
function locatedError(r: SpawnSyncReturns<string>, path: string, what?: RegExp): void {
  assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
  assert.equal(r.status, 1, r.stderr);
  assert.ok(r.stderr.includes(path), `the error names ${path}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  if (what) assert.match(r.stderr, what);
}

/** a log of `n` events written by this krsi */
async function makeLog(name: string, n: number, seed = 1): Promise<{ log: string; evs: KrsiEvent[] }> {
  const log = join(dir, name);
  const evs = gen(n, seed);
  const w = LogWriter.open(log);
  w.append(evs.map((e) => ({ ...e })));
  await w.close();
  return { log, evs };
}

/** the stored value of a key of the events database (raw lmdb) */
function rawValue(log: string, key: number): Buffer {
  const root = open({ path: log, maxDbs: 4, readOnly: true, noSubdir: false, compression: false });
  try {
    return Buffer.from(root.openDB<Buffer, number>({ name: 'events', encoding: 'binary' }).getBinary(key)!);
  } finally {
    void root.close();
  }
}

/** flips one bit of data.mdb inside the stored block of `key` (found by its bytes in the file) */
function flipInBlock(log: string, key: number, at: number): void {
  const v = rawValue(log, key);
  const file = join(log, 'data.mdb');
  const data = readFileSync(file);
  const pos = data.indexOf(v.subarray(0, 256));
  assert.ok(pos > 0, 'block found in data.mdb');
  data[pos + at] ^= 0x10;
  writeFileSync(file, data);
}

describe('damaged lmdb logs are located errors, never a signal', () => {
  test('empty, cut and zeroed data.mdb: info, export, replay and import exit 1 naming the file', async () => {
    const { log } = await makeLog('base', 5000);
    const size = statSync(join(log, 'data.mdb')).size;
    const cases: [string, (f: string) => void][] = [
      ['empty', (f) => truncateSync(f, 0)],
      ['cut-100', (f) => truncateSync(f, 100)],
      ['cut-half', (f) => truncateSync(f, Math.floor(size / 2))],
      ['cut-one-page', (f) => truncateSync(f, size - 4096)],
      ['zero-metas', (f) => zero(f, 0, 8192)],
      ['zero-main-root', (f) => zero(f, mainRoot(readFileSync(f)) * 4096, 4096)],
    ];
    const src = join(dir, 'one.jsonl');
    writeFileSync(src, jsonl(gen(1, 9).map((e) => ({ ...e, ts: 9e15 }))));
    for (const [name, damage] of cases) {
      const bad = join(dir, `dmg-${name}`);
      cpSync(log, bad, { recursive: true });
      damage(join(bad, 'data.mdb'));
      locatedError(krsi('log', 'info', bad), bad);
      locatedError(krsi('log', 'export', bad), bad);
      locatedError(krsi('replay', bad), bad);
      locatedError(krsi('log', 'import', src, bad), bad);
    }
  });

  test('a one-bit flip in a block: a located error naming log and seq after the events before it; --skip-bad skips it', async () => {
    const { log, evs } = await makeLog('flip', 3 * BLOCK + 10, 2);
    flipInBlock(log, BLOCK + 1, 300);
    const r = krsi('log', 'export', log);
    locatedError(r, `${log}:${BLOCK + 1}: event block at seq ${BLOCK + 1}`);
    assert.equal(r.stdout, jsonl(evs.slice(0, BLOCK)), 'the events before the damaged block are written first');
    const s = krsi('replay', log, '--skip-bad', '--format', 'json');
    assert.equal(s.status, 0, s.stderr);
    assert.match(s.stderr, new RegExp(`skipped ${log}:${BLOCK + 1}: event block at seq ${BLOCK + 1}: damaged: checksum mismatch`));
    const summary = JSON.parse(s.stdout.trim().split('\n').at(-1)!);
    assert.equal(summary.events, evs.length - BLOCK);
    assert.equal(summary.bad_lines, 1);
  });

  test('an event that fails validation is refused on read though the log is marked validated (ts 3.3e-297)', async () => {
    const { log } = await makeLog('tiny-ts', 10, 3);
    // what a bit flip in an F64 ts gives, stored with a valid checksum (as one who can write the file would)
    const evs = gen(10, 3);
    evs[4] = { ...evs[4], ts: 3.3e-297 };
    const root = open({ path: log, maxDbs: 4, noSubdir: false, compression: false });
    await root.openDB<Buffer, number>({ name: 'events', encoding: 'binary' }).put(1, seal(1, encodeBlock(evs)));
    assert.equal(root.openDB({ name: 'meta' }).get('validated'), true);
    await root.close();
    locatedError(krsi('log', 'export', log), `${log}:5: field ts`);
    locatedError(krsi('replay', log), `${log}:5: field ts`);
  });

  test('keys that are not block seqs (a string, an odd number) are located errors, skipped with --skip-bad', async () => {
    const { log, evs } = await makeLog('odd-keys', 2 * BLOCK + 5, 15);
    const root = open({ path: log, maxDbs: 4, noSubdir: false, compression: false });
    const db = root.openDB<Buffer, number | string>({ name: 'events', encoding: 'binary' });
    await db.put(7, seal(7, encodeBlock([evs[6]])));
    await db.put('x', Buffer.from('junk'));
    await root.close();
    locatedError(krsi('log', 'export', log), `${log}:${BLOCK + 1}: event block at seq ${BLOCK + 1}`);
    const r = krsi('log', 'export', log, '--skip-bad');
    assert.equal(r.signal, null);
    assert.ok(r.status === 0 || r.status === 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('a damaged free-page list: appending to the log is a located error (the writer died with SIGSEGV)', async () => {
    const { log } = await makeLog('free', 3000, 16);
    const w = LogWriter.open(log);
    w.append(gen(2000, 17).map((e) => ({ ...e, ts: e.ts + 1e12 })));
    await w.close();
    const file = join(log, 'data.mdb');
    const data = readFileSync(file);
    // the newer meta's free database root (lmdb.c: MDB_meta's dbs[0].md_root), its first node's list count
    const meta = data.readBigUInt64LE(4096 + 152) > data.readBigUInt64LE(152) ? 4096 : 0;
    const page = Number(data.readBigUInt64LE(meta + 88)) * 4096;
    assert.ok(data.readUInt16LE(page + 20) >= 2, 'the free database has a node');
    const node = page + 24 + data.readUInt16LE(page + 24);
    assert.equal(data.readUInt16LE(node + 4) & 1, 0, 'an inline list');
    data.writeBigUInt64LE(0x10000000n, node + 8 + data.readUInt16LE(node + 6));
    writeFileSync(file, data);
    const src = join(dir, 'free.jsonl');
    writeFileSync(src, jsonl(gen(3000, 18).map((e, i) => ({ ...e, ts: 8e15 + i }))));
    locatedError(krsi('log', 'import', src, log), log, /free-page list/);
  });

  test('swapped pages are an error, not an empty log', async () => {
    const { log } = await makeLog('swap', 3000, 4);
    const file = join(log, 'data.mdb');
    const data = readFileSync(file);
    const ps = 4096;
    // the main database's root page and another change places
    const root = mainRoot(data);
    const a = Buffer.from(data.subarray(root * ps, (root + 1) * ps));
    const other = root > 2 ? 2 : 3;
    data.copy(data, root * ps, other * ps, (other + 1) * ps);
    a.copy(data, other * ps);
    writeFileSync(file, data);
    locatedError(krsi('log', 'info', log), log, /pages moved|damaged/);
    locatedError(krsi('log', 'export', log), log);
  });

  test('a log whose blocks are missing is an error: in the middle, at the end, or all of them', async () => {
    for (const [name, keys] of [['mid', [BLOCK + 1]], ['end', [2 * BLOCK + 1]], ['all', [1, BLOCK + 1, 2 * BLOCK + 1]]] as const) {
      const { log } = await makeLog(`missing-${name}`, 2 * BLOCK + 100, 5);
      const root = open({ path: log, maxDbs: 4, noSubdir: false, compression: false });
      const db = root.openDB<Buffer, number>({ name: 'events', encoding: 'binary' });
      for (const k of keys) await db.remove(k);
      await root.close();
      const r = krsi('log', 'export', log);
      locatedError(r, log, /missing|metadata says/);
      if (name === 'all') assert.equal(r.stdout, '', 'nothing is read');
    }
  });
});

describe('hostile JSON Lines values', () => {
  test('an event whose env has 200k keys imports and exports back unchanged', async () => {
    const env: Record<string, string> = {};
    for (let i = 0; i < 200_000; i++) env[`K${i}`] = 'v';
    const ev = { ...gen(1, 6)[0], type: 'exec', filename: '/x', argv: ['x'], env };
    const src = join(dir, 'bigenv.jsonl');
    writeFileSync(src, JSON.stringify(ev) + '\n');
    const log = join(dir, 'bigenv.log');
    const r = krsi('log', 'import', src, log);
    assert.equal(r.status, 0, r.stderr);
    const out = krsi('log', 'export', log);
    assert.equal(out.status, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), JSON.parse(JSON.stringify(ev)));
  });

  test('an event nested 2000 deep: import is a located error (exit 1), replay reads it', () => {
    const three = gen(3, 7);
    const head = JSON.stringify({ ...three[0], ts: three[2].ts }).slice(0, -1);
    const src = join(dir, 'deep.jsonl');
    writeFileSync(src, jsonl(three) + `${head},"x":${'['.repeat(2000)}${']'.repeat(2000)}}\n`);
    const log = join(dir, 'deep.log');
    locatedError(krsi('log', 'import', src, log), `${src}:4`, /nested deeper/);
    const back = krsi('log', 'info', log, '--format', 'json');
    assert.equal(JSON.parse(back.stdout).count, 3, 'the events before it are committed');
    const r = krsi('replay', src, '--format', 'json');
    assert.equal(r.status, 0, r.stderr);
  });
});

describe('one writer per log; resumable imports', () => {
  test('a second writer is refused naming the holder; a dead holder is taken over', async () => {
    const { log } = await makeLog('locked', 10, 8);
    const code = `import { LogWriter } from ${JSON.stringify(INDEX)};
      const w = LogWriter.open(${JSON.stringify(log)});
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((res, rej) => {
        holder.stdout.on('data', (b: Buffer) => b.toString().includes('ready') && res());
        holder.on('exit', () => rej(new Error('the holder exited')));
      });
      const src = join(dir, 'lock.jsonl');
      writeFileSync(src, jsonl(gen(5, 9).map((e, i) => ({ ...e, ts: 9e15 + i }))));
      locatedError(krsi('log', 'import', src, log), log, new RegExp(`being written by pid ${holder.pid}`));
      assert.throws(() => LogWriter.open(log), new RegExp(`being written by pid ${holder.pid}`));
      // krsi record refuses it before loading any BPF program (so this needs no root or BPF)
      const rec = krsi('record', log, '--duration', '1');
      assert.equal(rec.status, 1, rec.stderr);
      assert.match(rec.stderr, new RegExp(`krsi record: ${log}: the log is being written by pid ${holder.pid}`));
      holder.kill('SIGKILL');
      await new Promise((res) => holder.on('exit', res));
      // the lock file still names the dead pid: taken over
      assert.equal(readFileSync(join(log, 'krsi.lock'), 'utf8').trim(), String(holder.pid));
      const r = krsi('log', 'import', src, log);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /imported 5 events/);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('two imports of different files into one new log at once: one is refused, or both land whole', async () => {
    const evs = gen(400_000, 10);
    const a = join(dir, 'a.jsonl');
    const b = join(dir, 'b.jsonl');
    writeFileSync(a, jsonl(evs.slice(0, 200_000)));
    writeFileSync(b, jsonl(evs.slice(200_000)));
    const log = join(dir, 'two');
    const run = async (src: string) => {
      const r = await krsiAsync(['log', 'import', src, log]);
      return { status: r.code, stderr: r.stderr };
    };
    const rs = await Promise.all([run(a), run(b)]);
    const ok = rs.filter((r) => r.status === 0);
    // before: both said "imported 200000 events" and the log held 200000 (the second overwrote the first)
    for (const r of rs) if (r.status !== 0) assert.match(r.stderr, /being written by pid \d+|is before the previous event's ts/);
    let n = 0;
    for await (const batch of readEvents(log)) n += batch.length;
    assert.equal(n, ok.length * 200_000, rs.map((r) => r.stderr).join(''));
  });

  test('an import killed midway resumes without duplicates; a missing source leaves no log', async () => {
    const evs = gen(300_000, 11);
    const src = join(dir, 'resume.jsonl');
    writeFileSync(src, jsonl(evs));
    const log = join(dir, 'resume');
    const code = `import { importLog } from ${JSON.stringify(INDEX)};
      await importLog(${JSON.stringify(src)}, ${JSON.stringify(log)}, { onProgress: (d, t) => d / t > 0.4 && process.kill(process.pid, 'SIGKILL') });`;
    const r0 = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: 'inherit', timeout: 60_000 });
    assert.equal(r0.signal, 'SIGKILL');
    const r = krsi('log', 'import', src, log);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resumed after line \d+/);
    const out = krsi('log', 'export', log);
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout, jsonl(evs), 'every event once, in order');
    // again: nothing new
    assert.match(krsi('log', 'import', src, log).stderr, /imported 0 events/);

    // endless input without a newline: a located error, no log left
    const zero = join(dir, 'zero-log');
    locatedError(krsi('log', 'import', '/dev/zero', zero), '/dev/zero:1', /a line longer than 64 MiB/);
    assert.equal(existsSync(zero), false, 'no empty log left behind');
    const none = join(dir, 'none');
    locatedError(krsi('log', 'import', join(dir, 'no-such.jsonl'), none), 'no-such.jsonl');
    assert.equal(existsSync(none), false, 'no empty log left behind');
  });
});

describe('files: 0600/0700, and paths others control are refused', () => {
  test('a new log is a 0700 directory of 0600 files', () => {
    const src = join(dir, 'perm.jsonl');
    writeFileSync(src, jsonl(gen(10, 12)));
    const log = join(dir, 'perm');
    assert.equal(krsi('log', 'import', src, log).status, 0);
    assert.equal(statSync(log).mode & 0o777, 0o700);
    for (const f of ['data.mdb', 'lock.mdb', 'krsi.lock']) assert.equal(statSync(join(log, f)).mode & 0o777, 0o600, f);
    const out = join(dir, 'perm-out.jsonl');
    assert.equal(krsi('log', 'export', log, out).status, 0);
    assert.equal(statSync(out).mode & 0o777, 0o600);
  });

  test('the verdict store: a 0700 state directory of 0600 files; a damaged store exits 3', () => {
    const state = join(dir, 'state', 'krsi');
    const r = krsi('verdicts', 'list', '--state', state);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(state).mode & 0o777, 0o700);
    for (const f of ['verdicts.mdb', 'verdicts.mdb-lock']) assert.equal(statSync(join(state, f)).mode & 0o777, 0o600, f);
    truncateSync(join(state, 'verdicts.mdb'), 100);
    const bad = krsi('verdicts', 'list', '--state', state);
    assert.equal(bad.signal, null);
    assert.equal(bad.status, 3, bad.stderr);
    assert.match(bad.stderr, /verdicts\.mdb: damaged lmdb file/);
  });

  test('symlinks, paths owned by others, and writable parents are refused (exit 1 logs, 3 state)', { skip: needRoot() }, async () => {
    const { log } = await makeLog('target', 10, 13);
    const src = join(dir, 'sym.jsonl');
    writeFileSync(src, jsonl(gen(3, 14).map((e, i) => ({ ...e, ts: 9e15 + i }))));
    const link = join(dir, 'link');
    symlinkSync(log, link);
    locatedError(krsi('log', 'export', link), link, /symbolic link/);
    locatedError(krsi('log', 'import', src, link), link, /symbolic link/);
    // a log directory a user owns (they could cut data.mdb while krsi maps it)
    const owned = join(dir, 'owned');
    cpSync(log, owned, { recursive: true });
    chownSync(owned, 65534, 65534);
    locatedError(krsi('log', 'info', owned), owned, /owned by uid 65534/);
    // created in a directory anyone can write (no sticky bit), or a user's directory
    const open777 = join(dir, 'open');
    mkdirSync(open777);
    chmodSync(open777, 0o777);
    locatedError(krsi('log', 'import', src, join(open777, 'log')), open777, /writable by others/);
    const sticky = join(dir, 'sticky');
    mkdirSync(sticky);
    chmodSync(sticky, 0o1777);
    assert.equal(krsi('log', 'import', src, join(sticky, 'log')).status, 0, 'a sticky directory such as /tmp is fine');
    const users = join(dir, 'users');
    mkdirSync(users);
    chownSync(users, 65534, 65534);
    locatedError(krsi('log', 'import', src, join(users, 'log')), users, /owned by uid 65534/);
    // a symlink on the way, in a user's directory, to a root-owned one: the user can repoint it after the check
    const rootDir = join(dir, 'root-owned');
    mkdirSync(rootDir, { mode: 0o700 });
    symlinkSync(rootDir, join(users, 'to-root'));
    locatedError(krsi('log', 'import', src, join(users, 'to-root', 'log')), users, /owned by uid 65534/);
    // the state directory: exit 3
    const stateLink = join(dir, 'state-link');
    mkdirSync(join(dir, 'real-state'), { mode: 0o700 });
    symlinkSync(join(dir, 'real-state'), stateLink);
    const st = krsi('verdicts', 'list', '--state', stateLink);
    assert.equal(st.status, 3, st.stderr);
    assert.match(st.stderr, /symbolic link/);
    const st2 = krsi('verdicts', 'list', '--state', join(users, 'state'));
    assert.equal(st2.status, 3, st2.stderr);
    assert.match(st2.stderr, /owned by uid 65534/);
  });
});

/** the root page of the main database in the newer meta page (4096-byte pages; lmdb.c's MDB_meta) */
function mainRoot(data: Buffer): number {
  const txn = (m: number) => data.readBigUInt64LE(m + 152);
  const meta = txn(4096) > txn(0) ? 4096 : 0;
  return Number(data.readBigUInt64LE(meta + 136));
}

function zero(file: string, at: number, n: number): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(n), 0, n, at);
  closeSync(fd);
}
