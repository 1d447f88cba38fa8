// The exe hashing stage without the kernel: real files, real processes (the reader is one), synthetic exec events.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readlinkSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EMPTY, Subject } from 'rxjs';
import type { ExecEvent, KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import { ExeHasher } from '../../signals/hash.ts';
import { exeHashes } from '../../signals/exe-hashes.ts';
import { needsExeHash } from '../../engine/rules/reads.ts';
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

describe('ExeHasher (the reader child process)', () => {
  let dir: string;
  const children: ChildProcess[] = [];
  const hashers: ExeHasher[] = [];
  /** a hasher whose reader is up (started from the TypeScript sources it takes longer than a deadline) */
  const hasher = async (o?: ConstructorParameters<typeof ExeHasher>[0]) => {
    const h = new ExeHasher(o);
    hashers.push(h);
    await h.start();
    return h;
  };
  before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-hash-'))));
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    for (const h of hashers) h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('SIGUSR1 to the reader (a root process) opens no inspector; it keeps hashing', async () => {
    const h = await hasher();
    const pid = h.readerPid!;
    const inodes = () => readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } });
    const listens = () => {
      const mine = new Set(inodes().map((l) => /^socket:\[(\d+)\]$/.exec(l)?.[1]).filter(Boolean));
      return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((t) => readFileSync(t, 'utf8').split('\n').slice(1))
        .map((l) => l.trim().split(/\s+/)).filter((c) => c[3] === '0A' && mine.has(c[9]));
    };
    process.kill(pid, 'SIGUSR1');
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(listens(), [], 'the reader listens on a socket after SIGUSR1');
    const f = join(dir, 'usr1');
    copyFileSync('/bin/true', f);
    assert.equal((await h.hash(execOf(f))).sha256, sha('/bin/true'));
    assert.equal(h.readerPid, pid, 'the same reader answered');
  });

  test('by path when the process is gone; cached per file version', async () => {
    const f = join(dir, 'a');
    copyFileSync('/bin/true', f);
    const h = await hasher();
    assert.equal((await h.hash(execOf(f))).sha256, sha('/bin/true'));
    assert.equal((await h.hash(execOf(f))).sha256, sha('/bin/true'));
    assert.deepEqual([h.stats().misses, h.stats().hits, h.stats().cached], [1, 1, 1]);
    // the same inode rewritten (same size): a new ctime/mtime, hashed again
    const other = readFileSync('/bin/true');
    other[other.length - 1] ^= 0xff;
    writeFileSync(f, other);
    assert.equal((await h.hash(execOf(f))).sha256, createHash('sha256').update(other).digest('hex'));
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
    assert.equal((await (await hasher()).hash(exec(c.pid!, { dev: 0, ino, path: f }))).sha256, want);
    c.kill('SIGKILL');
  });

  test('a path now naming another file is not hashed (replaced), a missing one neither (gone)', async () => {
    const f = join(dir, 'b');
    copyFileSync('/bin/true', f);
    const ev = execOf(f);
    copyFileSync('/bin/false', f + '.new');
    renameSync(f + '.new', f);
    const h = await hasher();
    assert.deepEqual(await h.hash(ev), { error: 'replaced' });
    assert.deepEqual(await h.hash({ ...ev, exe: { ...ev.exe, path: join(dir, 'nothing') } }), { error: 'gone' });
    assert.deepEqual(await h.hash({ ...ev, exe: { ...ev.exe, path: '/.../b' } }), { error: 'gone' }, 'a path cut to its tail');
    const fifo = join(dir, 'fifo');
    spawnSync('mkfifo', [fifo]);
    assert.deepEqual(await h.hash({ ...ev, exe: { ...ev.exe, path: fifo, ino: statSync(fifo).ino } }), { error: 'replaced' }, 'a FIFO is no executable (and never opened)');
  });

  test('one read for concurrent execs of a file (the others count as hits); too large ones not read at all', async () => {
    const f = join(dir, 'big');
    writeFileSync(f, randomBytes(3 << 20));
    const h = await hasher();
    const [a, b] = await Promise.all([h.hash(execOf(f)), h.hash(execOf(f))]);
    assert.deepEqual([a.sha256, b.sha256], [sha(f), sha(f)]);
    assert.deepEqual([h.stats().misses, h.stats().bytes, h.stats().pending], [1, 3 << 20, 0]);
    assert.equal((await h.hash(execOf(f))).sha256, sha(f), 'then cached');
    assert.equal(h.stats().hits, 2);
    const small = await hasher({ maxBytes: 1 << 20 });
    assert.deepEqual(await small.hash(execOf(f)), { error: 'too_large' });
    assert.equal(small.stats().bytes, 0, 'not read');
  });

  test('the LRU keeps cacheSize entries', async () => {
    const h = await hasher({ cacheSize: 2 });
    const files = ['c1', 'c2', 'c3'].map((n) => join(dir, n));
    files.forEach((f, i) => writeFileSync(f, `file ${i}`));
    for (const f of files) await h.hash(execOf(f));
    assert.equal(h.stats().cached, 2);
    await h.hash(execOf(files[2]));
    await h.hash(execOf(files[0]));
    assert.deepEqual([h.stats().hits, h.stats().misses], [1, 4], 'c3 kept, c1 evicted');
  });

  test('closed: unavailable, and the reader process is gone', async () => {
    const h = await hasher();
    const pid = h.readerPid!;
    h.close();
    assert.deepEqual(await h.hash(execOf('/bin/true')), { error: 'unavailable' });
    for (let i = 0; i < 100 && existsSync(`/proc/${pid}/exe`); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(!existsSync(`/proc/${pid}/exe`));
  });
});

describe('exeHashes: the stage keeps the order', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-hash-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** a source, the stage on it, what came out; stop() completes the source and waits for the stage */
  function staged(hasher = new ExeHasher()) {
    const raw = new Subject<KrsiEvent[]>();
    const seen: KrsiEvent[][] = [];
    let completed = false;
    let done!: () => void;
    const end = new Promise<void>((r) => (done = r));
    raw.pipe(exeHashes(hasher)).subscribe({ next: (b) => seen.push(b), complete: () => ((completed = true), done()) });
    const stop = async () => {
      raw.complete();
      await end;
      hasher.close();
    };
    return { raw, hasher, seen, stop, completed: () => completed };
  }
  const fork = (): KrsiEvent => ({ ts: ts++, type: 'fork', pid: 1, ppid: 0, uid: 0, comm: 'x', exe: { dev: 1, ino: 1, path: '/x' }, child_pid: 2 });

  test('batches without exec pass synchronously when nothing waits; one waiting for a hash holds the later ones', async () => {
    const small = join(dir, 'small');
    const big = join(dir, 'big');
    copyFileSync('/bin/true', small);
    writeFileSync(big, randomBytes(2 << 20));
    const { raw, hasher, seen, stop } = staged();
    await hasher.start();
    raw.next([fork()]);
    assert.equal(seen.length, 1, 'no wait: delivered at once');
    assert.equal(hasher.heldFrom(), undefined);

    const e2 = execOf(big);
    const f3 = fork();
    const e4 = execOf(small);
    raw.next([e2]);
    raw.next([f3, e4]);
    assert.equal(seen.length, 1, 'the exec holds its batch and the next');
    assert.equal(hasher.stats().waiting, 2);
    assert.equal(hasher.heldFrom(), e2.ts, 'the heartbeat may not pass the held exec');
    await stop();
    assert.deepEqual(seen.flat().map((e) => e.ts), [...seen.flat().map((e) => e.ts)].sort((a, b) => a - b), 'in order');
    assert.deepEqual(seen.map((b) => b.length), [1, 1, 2]);
    assert.equal((seen[1][0] as ExecEvent).sha256, sha(big));
    assert.equal((seen[2][1] as ExecEvent).sha256, sha(small));
    assert.equal(hasher.heldFrom(), undefined);
    assert.equal(hasher.stats().hashed, 2);
  });

  test('an exec that cannot be hashed goes on with sha256_error; completing the source completes the stage', async () => {
    const { raw, hasher, seen, stop, completed } = staged();
    await hasher.start();
    const ev = exec(deadPid(), { dev: 1, ino: 1, path: join(dir, 'missing') });
    raw.next([ev]);
    await stop();
    assert.equal(seen.flat().length, 1);
    assert.equal((seen[0][0] as ExecEvent).sha256, undefined);
    assert.equal((seen[0][0] as ExecEvent).sha256_error, 'gone');
    assert.equal(hasher.stats().failures.gone, 1);
    assert.ok(completed());
  });

  test('bounded: past maxQueued events the oldest batches go on at once with queue_full (the hash dropped, never the event)', async () => {
    const { raw, hasher, seen, stop } = staged(new ExeHasher({ maxQueued: 4, deadlineMs: 10_000 }));
    await hasher.start();
    const evs = Array.from({ length: 7 }, () => execOf('/bin/true'));
    for (const e of evs) raw.next([e]);
    assert.equal(seen.length, 3, 'the 3 oldest went on at once');
    assert.deepEqual(seen.flat().map((e) => (e as ExecEvent).sha256_error), ['queue_full', 'queue_full', 'queue_full']);
    await stop();
    assert.equal(seen.length, 7, 'every event delivered');
    assert.deepEqual(seen.flat().map((e) => e.ts), evs.map((e) => e.ts), 'in order');
    assert.deepEqual(evs.slice(3).map((e) => e.sha256), Array(4).fill(sha('/bin/true')));
    assert.equal(hasher.stats().failures.queue_full, 3);
  });

  test('the deadline: an exec event not answered in time goes on with timeout', async () => {
    // deadline 0: answered, at best, after the event had to go
    const { raw, hasher, seen, stop } = staged(new ExeHasher({ deadlineMs: 0 }));
    await hasher.start(); // deadlines count from the reader's start
    const ev = execOf('/bin/true');
    raw.next([ev]);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(seen.flat().length, 1);
    assert.equal(ev.sha256_error, 'timeout');
    await stop();
    assert.equal(ev.sha256, undefined, 'a late answer does not change an event already delivered');
  });
});

describe('krsi record: recorded exec events carry sha256', () => {
  test('recordLive hashes by default, not with hashExe: false (stub source, real lmdb log)', async () => {
    const { recordLive } = await import('../../cli/live-runs.ts');
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
