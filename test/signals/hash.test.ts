// The exe hashing stage without the kernel: real files and real processes, synthetic exec events.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMPTY, Subject } from 'rxjs';
import type { ExecEvent, KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import { ExeHasher, needsExeHash, withExeHashes } from '../../signals/hash.ts';
import { loadRuleSources, loadRuleDirs, BUNDLED_RULES_DIR } from '../../engine/rules/load.ts';

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

/** a pid no process has now */
function deadPid(): number {
  let pid = 4_000_000;
  while (existsSync(`/proc/${pid}`)) pid--;
  return pid;
}

let ts = 1_000;
function exec(pid: number, exe: { dev: number; ino: number; path: string }): ExecEvent {
  return { ts: ts++, type: 'exec', pid, ppid: 1, uid: 0, comm: 'x', exe, filename: exe.path };
}
/** an exec of the file now at path */
const execOf = (path: string, pid = deadPid()) => exec(pid, { dev: statSync(path).dev, ino: statSync(path).ino, path });

function rulesFrom(rules: unknown[]) {
  const r = loadRuleSources([{ file: 't.json', text: JSON.stringify({ lists: { l: ['a'] }, rules }) }]);
  assert.ok(r.ok && r.set, JSON.stringify(r.issues));
  return r.set;
}
const rule = (id: string, match: unknown, extra: Record<string, unknown> = {}) => ({
  id, description: id, tags: ['t'], severity: 'low', mode: 'monitor', match, actions: [{ type: 'alert' }], ...extra,
});

describe('needsExeHash', () => {
  test('the bundled rules hash (known-vulnerable-binary matches sha256 on exec)', async () => {
    assert.equal(needsExeHash(await loadRuleDirs([BUNDLED_RULES_DIR])), true);
  });
  test('rules that never read sha256 on exec do not', () => {
    const noSha = rulesFrom([rule('a', { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'exe', path: '$.path', operator: 'equal', value: '/x' }] })]);
    assert.equal(needsExeHash(noSha), false);
    const moduleSha = rulesFrom([rule('m', { all: [{ fact: 'type', operator: 'equal', value: 'module_load' }, { fact: 'sha256', operator: 'inList', value: 'l' }] })]);
    assert.equal(needsExeHash(moduleSha), false, 'sha256 of module_load only');
  });
  test('a condition, a key or a template on exec does', () => {
    const cond = rulesFrom([rule('c', { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'sha256', operator: 'inList', value: 'l' }] })]);
    assert.equal(needsExeHash(cond), true);
    const tmpl = rulesFrom([rule('t', { all: [{ fact: 'type', operator: 'equal', value: 'exec' }] }, { actions: [{ type: 'alert', message: 'ran {sha256}' }] })]);
    assert.equal(needsExeHash(tmpl), true);
    const key = rulesFrom([rule('k', { all: [{ fact: 'type', operator: 'equal', value: 'exec' }] }, { correlation: { distinct: { by: ['sha256'], within: '1m', field: 'pid', threshold: 3 } } })]);
    assert.equal(needsExeHash(key), true);
  });
});

describe('ExeHasher', () => {
  let dir: string;
  const children: ChildProcess[] = [];
  before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-hash-'))));
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('by path when the process is gone; cached per file version', () => {
    const f = join(dir, 'a');
    copyFileSync('/bin/true', f);
    const h = new ExeHasher();
    assert.equal(h.hash(execOf(f)), sha('/bin/true'));
    assert.equal(h.hash(execOf(f)), sha('/bin/true'));
    assert.deepEqual([h.stats().misses, h.stats().hits, h.stats().hashed], [1, 1, 2]);
    // the same inode rewritten (same size): a new ctime/mtime, hashed again
    const other = readFileSync('/bin/true');
    other[other.length - 1] ^= 0xff;
    writeFileSync(f, other);
    assert.equal(h.hash(execOf(f)), createHash('sha256').update(other).digest('hex'));
    assert.equal(h.stats().misses, 2);
  });

  test('via /proc/<pid>/exe while the process runs, also when its file was deleted', async () => {
    const f = join(dir, 'sleeper');
    copyFileSync('/bin/sleep', f);
    const want = sha(f);
    const ino = statSync(f).ino;
    const c = spawn(f, ['30'], { stdio: 'ignore' });
    children.push(c);
    await new Promise((r) => c.once('spawn', r));
    for (let i = 0; i < 100 && statSync(`/proc/${c.pid}/exe`).ino !== ino; i++) await new Promise((r) => setTimeout(r, 10));
    unlinkSync(f);
    const h = new ExeHasher();
    assert.equal(h.hash(exec(c.pid!, { dev: 0, ino, path: f })), want);
    c.kill('SIGKILL');
  });

  test('a path now naming another file is not hashed (replaced), a missing one neither (gone)', () => {
    const f = join(dir, 'b');
    copyFileSync('/bin/true', f);
    const ev = execOf(f);
    copyFileSync('/bin/false', f + '.new');
    renameSync(f + '.new', f);
    const h = new ExeHasher();
    assert.equal(h.hash(ev), undefined);
    assert.equal(h.hash({ ...ev, exe: { ...ev.exe, path: join(dir, 'nothing') } }), undefined);
    assert.equal(h.hash({ ...ev, exe: { ...ev.exe, path: '/.../b' } }), undefined, 'a path cut to its tail');
    const s = h.stats();
    assert.deepEqual([s.failed, s.failures.replaced, s.failures.gone, s.hashed], [3, 1, 2, 0]);
  });

  test('large files asynchronously, one read for concurrent execs; too large ones not at all', async () => {
    const f = join(dir, 'big');
    writeFileSync(f, randomBytes(3 << 20));
    const h = new ExeHasher({ syncMaxBytes: 1 << 20 });
    const p1 = h.hash(execOf(f));
    const p2 = h.hash(execOf(f));
    assert.ok(p1 instanceof Promise && p2 instanceof Promise, 'not hashed synchronously');
    assert.equal(h.stats().pending, 1);
    assert.deepEqual(await Promise.all([p1, p2]), [sha(f), sha(f)]);
    const s = h.stats();
    assert.deepEqual([s.misses, s.async, s.hits, s.hashed, s.bytes, s.pending], [1, 1, 1, 2, 3 << 20, 0]);
    assert.equal(h.hash(execOf(f)), sha(f), 'then cached');
    assert.equal(new ExeHasher({ maxBytes: 1 << 20 }).hash(execOf(f)), undefined);
  });

  test('the LRU keeps cacheSize entries', () => {
    const h = new ExeHasher({ cacheSize: 2 });
    const files = ['c1', 'c2', 'c3'].map((n) => join(dir, n));
    files.forEach((f, i) => writeFileSync(f, `file ${i}`));
    for (const f of files) h.hash(execOf(f));
    assert.equal(h.stats().cached, 2);
    h.hash(execOf(files[2]));
    h.hash(execOf(files[0]));
    assert.deepEqual([h.stats().hits, h.stats().misses], [1, 4], 'c3 kept, c1 evicted');
  });
});

describe('withExeHashes: the stage keeps the order', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-hash-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function stub() {
    const raw = new Subject<KrsiEvent[]>();
    const live: LiveSignals = {
      events$: EMPTY, batches$: raw, lost: () => 0, lostByKind: () => ({}), unavailable: {},
      stats: () => ({ records: 0, events: 0, bad: 0, reordered: 0 }), stop: async () => raw.complete(),
    };
    return { raw, live };
  }
  const fork = (): KrsiEvent => ({ ts: ts++, type: 'fork', pid: 1, ppid: 0, uid: 0, comm: 'x', exe: { dev: 1, ino: 1, path: '/x' }, child_pid: 2 });

  test('batches without a pending hash pass synchronously; one waiting for a big file holds the later ones', async () => {
    const small = join(dir, 'small');
    const big = join(dir, 'big');
    copyFileSync('/bin/true', small);
    writeFileSync(big, randomBytes(2 << 20));
    const { raw, live } = stub();
    const hashed = withExeHashes(live, new ExeHasher({ syncMaxBytes: 1 << 20 }));
    const seen: KrsiEvent[][] = [];
    hashed.batches$.subscribe((b) => seen.push(b));
    const f0 = fork();
    raw.next([f0, execOf(small)]);
    assert.equal(seen.length, 1, 'no wait: delivered at once');
    assert.equal(hashed.heldFrom(), undefined);
    assert.equal((seen[0][1] as ExecEvent).sha256, sha(small));

    const e2 = execOf(big);
    const f3 = fork();
    const e4 = execOf(small);
    raw.next([e2]);
    raw.next([f3, e4]);
    assert.equal(seen.length, 1, 'the big file holds its batch and the next');
    assert.equal(hashed.hasher.stats().waiting, 2);
    assert.equal(hashed.heldFrom(), e2.ts, 'the heartbeat may not pass the held exec');
    await hashed.stop();
    assert.deepEqual(seen.flat().map((e) => e.ts), [...seen.flat().map((e) => e.ts)].sort((a, b) => a - b), 'in order');
    assert.deepEqual(seen.map((b) => b.length), [2, 1, 2]);
    assert.equal((seen[1][0] as ExecEvent).sha256, sha(big));
    assert.equal((seen[2][1] as ExecEvent).sha256, sha(small));
    assert.equal(hashed.heldFrom(), undefined);
  });

  test('an exec that cannot be hashed goes on without sha256; stop() completes the stream', async () => {
    const { raw, live } = stub();
    const hashed = withExeHashes(live);
    const seen: KrsiEvent[] = [];
    let completed = false;
    hashed.events$.subscribe({ next: (e) => seen.push(e), complete: () => (completed = true) });
    const ev = exec(deadPid(), { dev: 1, ino: 1, path: join(dir, 'missing') });
    raw.next([ev]);
    await hashed.stop();
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as ExecEvent).sha256, undefined);
    assert.equal(hashed.hasher.stats().failures.gone, 1);
    assert.ok(completed);
  });
});

describe('krsi record: recorded exec events carry sha256', () => {
  test('recordLive hashes by default, not with hashExe: false (stub source, real lmdb log)', async () => {
    const { recordLive } = await import('../../engine/commands/record.ts');
    const { readEvents } = await import('../../engine/eventlog/index.ts');
    const dir = mkdtempSync(join(tmpdir(), 'krsi-hash-rec-'));
    try {
      for (const hashExe of [undefined, false]) {
        const raw = new Subject<KrsiEvent[]>();
        const live: LiveSignals = {
          events$: EMPTY, batches$: raw, lost: () => 0, lostByKind: () => ({}), unavailable: {},
          stats: () => ({ records: 0, events: 0, bad: 0, reordered: 0 }), stop: async () => raw.complete(),
        };
        let stop!: () => void;
        const log = join(dir, `log-${hashExe}`);
        const running = recordLive({ log, live, hashExe, stop: new Promise<void>((r) => (stop = r)) });
        raw.next([execOf('/bin/true')]);
        stop();
        const r = await running;
        const got: KrsiEvent[] = [];
        for await (const b of readEvents(log)) got.push(...b);
        assert.equal(got.length, 1);
        assert.equal((got[0] as ExecEvent).sha256, hashExe === false ? undefined : sha('/bin/true'), `hashExe ${hashExe}`);
        assert.equal(r.hash?.hashed, hashExe === false ? undefined : 1);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
