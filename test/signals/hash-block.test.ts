// Exe hashing against files that never answer a read: a real FUSE file system (fixtures/hangfs.c, the
// kernel's FUSE protocol, no libfuse) whose READ requests are left unanswered, as an attacker's FUSE
// daemon or a hung NFS server would. The exec events go on by their deadline with sha256_error, krsi's
// own libuv threadpool stays free, the stuck reader is replaced, and a process with a stuck read exits.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Subject, finalize, share } from 'rxjs';
import type { ExecEvent, KrsiEvent } from '../../signals/events.ts';
import { ExeHasher } from '../../signals/hash.ts';
import { exeHashes } from '../../signals/exe-hashes.ts';
import { needCc, needRoot } from '../helpers/prereq.ts';

const skip = needRoot() ?? needCc() ?? (existsSync('/dev/fuse') ? undefined : 'needs /dev/fuse (FUSE)');
const FIXTURE = fileURLToPath(new URL('./fixtures/hangfs.c', import.meta.url));
const HASH_TS = fileURLToPath(new URL('../../signals/hash.ts', import.meta.url));
const STAGE_TS = fileURLToPath(new URL('../../signals/exe-hashes.ts', import.meta.url));
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function deadPid(): number {
  let pid = 4_000_000;
  while (existsSync(`/proc/${pid}`)) pid--;
  return pid;
}
let ts = 1_000;
const exec = (path: string, ino = statSync(path).ino): ExecEvent => ({ ts: ts++, type: 'exec', pid: deadPid(), ppid: 1, uid: 0, comm: 'x', exe: { dev: 0, ino, path }, filename: path });
const fork = (): KrsiEvent => ({ ts: ts++, type: 'fork', pid: 1, ppid: 0, uid: 0, comm: 'x', exe: { dev: 1, ino: 1, path: '/x' }, child_pid: 2 });

/** resolves with what `p` gives, or 'TIMEOUT' after ms */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, sleep(ms).then(() => 'TIMEOUT' as const)]);

describe('exe hashing: a FUSE file whose reads never return', { skip }, () => {
  let dir: string;
  let mnt: string;
  let fs: ChildProcess | undefined;
  const FILES = 6;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'krsi-hangfs-'));
    mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const bin = join(dir, 'hangfs');
    const cc = spawnSync('cc', ['-O2', '-o', bin, FIXTURE], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    fs = spawn(bin, [mnt, String(FILES), String(1 << 20)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const ready = await within(new Promise<void>((r) => fs!.stdout!.on('data', (d) => String(d).includes('ready') && r())), 5000);
    assert.notEqual(ready, 'TIMEOUT', 'hangfs mounted');
    assert.equal(statSync(join(mnt, 'f0')).ino, 100);
  });
  after(async () => {
    // the daemon's death aborts the connection: every read still waiting fails, the mount can go
    if (fs && fs.exitCode === null) {
      fs.kill('SIGKILL');
      await new Promise((r) => fs!.once('exit', r));
    }
    spawnSync('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** a source and the hashing stage on it; stop() completes the source and waits for the stage */
  function staged(hasher: ExeHasher) {
    const raw = new Subject<KrsiEvent[]>();
    let done!: () => void;
    const end = new Promise<void>((r) => (done = r));
    const batches$ = raw.pipe(exeHashes(hasher), finalize(() => done()), share());
    const stop = async () => {
      raw.complete();
      await end;
      hasher.close();
    };
    return { raw, batches$, stop };
  }

  test('events go on by the deadline with sha256_error; the threadpool stays free; the stuck reader is replaced', async () => {
    const ok = join(dir, 'ok');
    copyFileSync('/bin/true', ok);
    const hasher = new ExeHasher({ deadlineMs: 300, stuckMs: 1500 });
    const { raw, ...hashed } = staged(hasher);
    await (hasher as { start?(): Promise<void> }).start?.();
    const seen: KrsiEvent[][] = [];
    const arrived: number[] = [];
    hashed.batches$.subscribe((b) => (seen.push(b), arrived.push(Date.now())));
    try {
      const stuck = exec(join(mnt, 'f0'));
      const t0 = Date.now();
      raw.next([stuck]);
      raw.next([fork()]);
      for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(20);
      assert.equal(seen.length, 2, 'the exec of the hanging file and the batch behind it went on');
      assert.ok(arrived[0] - t0 < 1000, `held ${arrived[0] - t0} ms: not beyond the deadline`);
      assert.equal(stuck.sha256, undefined);
      assert.equal(stuck.sha256_error, 'timeout');

      // a normal file exec'd while that read still hangs: hashed (its read does not wait behind it)
      const normal = exec(ok);
      raw.next([normal]);
      for (let i = 0; i < 100 && seen.length < 3; i++) await sleep(20);
      assert.equal(normal.sha256, sha(ok), `a normal exec hashed beside the stuck read: ${normal.sha256_error}`);

      // more hanging files: krsi's own libuv threadpool (4 threads) stays free for its other file work
      const more = [1, 2, 3, 4, 5].map((i) => exec(join(mnt, `f${i}`)));
      raw.next(more);
      await sleep(400);
      const reads = await within(Promise.all(Array.from({ length: 8 }, () => readFile('/proc/self/stat'))), 3000);
      assert.notEqual(reads, 'TIMEOUT', 'krsi\'s threadpool is not exhausted by hanging reads');
      assert.deepEqual(more.map((e) => e.sha256_error), ['timeout', 'timeout', 'timeout', 'timeout', 'timeout']);

      // the watchdog: a reader with an answer outstanding for stuckMs is killed and replaced
      const first = hasher.readerPid!;
      for (let i = 0; i < 150 && hasher.stats().restarts === 0; i++) await sleep(20);
      assert.ok(hasher.stats().restarts >= 1, `stuck reader replaced: ${JSON.stringify(hasher.stats())}`);
      for (let i = 0; i < 100 && existsSync(`/proc/${first}/exe`); i++) await sleep(20);
      assert.ok(!existsSync(`/proc/${first}/exe`), 'the stuck reader is dead (SIGKILL ends a FUSE wait)');
      await hasher.start();
      const again = exec(join(dir, 'again'), (writeFileSync(join(dir, 'again'), 'x'), statSync(join(dir, 'again')).ino));
      raw.next([again]);
      for (let i = 0; i < 100 && again.sha256 === undefined && again.sha256_error === undefined; i++) await sleep(20);
      assert.equal(again.sha256, createHash('sha256').update('x').digest('hex'), 'the new reader hashes');
      assert.notEqual(hasher.readerPid, first);
    } finally {
      assert.notEqual(await within(hashed.stop(), 5000), 'TIMEOUT', 'stop() returns');
    }
    assert.deepEqual(seen.flat().map((e) => e.ts), [...seen.flat().map((e) => e.ts)].sort((a, b) => a - b), 'in order');
  });

  test('a stat that never returns (the lookup is left unanswered): the event goes on, the reader is replaced', async () => {
    const smnt = join(dir, 'smnt');
    mkdirSync(smnt);
    const sfs = spawn(join(dir, 'hangfs'), [smnt, '1', '4096', 'stat'], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      assert.notEqual(await within(new Promise<void>((r) => sfs.stdout!.on('data', (d) => String(d).includes('ready') && r())), 5000), 'TIMEOUT');
      const hasher = new ExeHasher({ deadlineMs: 200, stuckMs: 1000 });
      const { raw, ...hashed } = staged(hasher);
      await (hasher as { start?(): Promise<void> }).start?.();
      const seen: KrsiEvent[] = [];
      hashed.batches$.subscribe((b) => seen.push(...b));
      const ev = exec(join(smnt, 'f0'), 100);
      raw.next([ev]);
      for (let i = 0; i < 100 && !seen.length; i++) await sleep(20);
      assert.equal(ev.sha256_error, 'timeout', 'the exec event went on by its deadline');
      for (let i = 0; i < 150 && hasher.stats().restarts === 0; i++) await sleep(20);
      assert.equal(hasher.stats().restarts, 1, 'the reader stuck in stat was replaced');
      await (hasher as { start?(): Promise<void> }).start?.();
      const ok = exec('/bin/true');
      raw.next([ok]);
      for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(20);
      assert.equal(ok.sha256, sha('/bin/true'), 'the new reader hashes');
      assert.notEqual(await within(hashed.stop(), 5000), 'TIMEOUT');
    } finally {
      sfs.kill('SIGKILL');
      await new Promise((r) => (sfs.exitCode !== null ? r(null) : sfs.once('exit', r)));
      spawnSync('umount', ['-l', smnt]);
    }
  });

  test('a process whose exe hash read hangs still exits', async () => {
    // a separate node process (as krsi run): hashes a hanging file, then exits
    const script = `
      setTimeout(() => process.exit(0), 5000);
      const { ExeHasher } = await import(${JSON.stringify(HASH_TS)});
      const { exeHashes } = await import(${JSON.stringify(STAGE_TS)});
      const { Subject } = await import('rxjs');
      const raw = new Subject();
      const hasher = new ExeHasher({ deadlineMs: 200 });
      await hasher.start();
      raw.pipe(exeHashes(hasher)).subscribe((b) => console.log('delivered', b[0].sha256_error ?? b[0].sha256));
      raw.next([{ ts: 1, type: 'exec', pid: ${deadPid()}, ppid: 1, uid: 0, comm: 'x', exe: { dev: 0, ino: 101, path: ${JSON.stringify(join(mnt, 'f1'))} }, filename: 'x' }]);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const code = await within(new Promise((r) => child.once('exit', (c, s) => r(c ?? s))), 20_000);
    if (code === 'TIMEOUT') child.kill('SIGKILL'); // a FUSE wait ends on SIGKILL; the hangfs kill in after() does the rest
    assert.equal(code, 0, `exited (out: ${out})`);
    assert.match(out, /delivered timeout/);
  });
});
