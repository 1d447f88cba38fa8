// Live exe hashing: a copy of /bin/true whose sha256 is on a rule's list runs; its exec event carries
// the right sha256 (live and in the recorded log) and the rule fires. /bin/false (another binary)
// gets its own sha256 and does not fire it; a copy deleted right after it starts is still hashed. Real kernel, krsi run's pipeline (runLive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, readSync, realpathSync, rmSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needLiveBpf } from '../helpers/prereq.ts';
import type { ExecEvent, KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import type { AlertOut, Output } from '../../engine/types.ts';

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test('live: exec events carry the executable\'s sha256 and a sha256 rule fires on it', { skip: needLiveBpf() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-hash-'));
  let live: LiveSignals | undefined;
  try {
    const copy = join(dir, 'not-true');
    copyFileSync('/bin/true', copy);
    const copySha = sha(copy);
    const falseSha = sha('/bin/false');
    assert.notEqual(copySha, falseSha);
    const { loadRuleSources } = await import('../../engine/rules/load.ts');
    const loaded = loadRuleSources([{
      file: 'hash.json',
      text: JSON.stringify({
        lists: { bad_sha: [copySha] },
        rules: [{
          id: 'bad-binary', description: 'exec of a listed binary', tags: ['test'], severity: 'high', mode: 'monitor',
          match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'sha256', operator: 'inList', value: 'bad_sha' }] },
          actions: [{ type: 'alert', message: '{exe.path} is listed' }],
        }],
      }),
    }]);
    assert.ok(loaded.ok && loaded.set, JSON.stringify(loaded.issues));
    const { runLive } = await import('../../cli/live-runs.ts');
    const { startSignals } = await import('../../signals/live.ts');
    const { readEvents } = await import('../../engine/eventlog/index.ts');

    live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
    const seen: KrsiEvent[] = [];
    live.events$.subscribe((e) => seen.push(e));
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const outs: Output[] = [];
    const log = join(dir, 'log');
    const running = runLive({ rules: loaded.set, live, stop: stopped, record: log }, (o) => outs.push(o));

    const a = spawnSync(copy);
    const b = spawnSync('/bin/false');
    assert.equal(a.status, 0);
    assert.equal(b.status, 1);
    // a copy deleted as soon as it runs: hashed through /proc/PID/exe while it sleeps
    const sleeper = join(dir, 'sleeper');
    copyFileSync('/bin/sleep', sleeper);
    const sleeperSha = sha(sleeper);
    const c = spawn(sleeper, ['1'], { stdio: 'ignore' });
    await new Promise((r) => c.once('spawn', r));
    unlinkSync(sleeper);
    await new Promise((r) => c.once('exit', r));
    const pids = [a.pid!, b.pid!, c.pid!];
    for (let i = 0; i < 100 && pids.some((p) => !seen.some((e) => e.type === 'exit' && e.pid === p)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    stop();
    const summary = await running;
    live = undefined; // runLive stopped it

    const recorded: ExecEvent[] = [];
    for await (const batch of readEvents(log)) for (const e of batch) if (e.type === 'exec' && pids.includes(e.pid)) recorded.push(e);
    const execA = recorded.find((e) => e.pid === a.pid);
    const execB = recorded.find((e) => e.pid === b.pid);
    assert.ok(execA && execB, `both execs recorded: ${JSON.stringify(recorded)}`);
    assert.equal(execA.exe.ino, statSync(copy).ino);
    assert.equal(execA.sha256, copySha, 'the copy\'s exec carries its sha256');
    assert.equal(execB.exe.path, realpathSync('/bin/false'));
    assert.equal(execB.sha256, falseSha, '/bin/false\'s exec carries its own sha256');
    const execC = recorded.find((e) => e.pid === c.pid);
    assert.ok(execC, 'the deleted copy\'s exec recorded');
    assert.equal(execC.sha256, sleeperSha, 'a deleted executable still hashed (the running process\'s /proc/PID/exe)');

    const alerts = outs.filter((o): o is AlertOut => o.kind === 'alert' && pids.includes(o.pid));
    assert.equal(alerts.length, 1, `one alert: ${JSON.stringify(alerts)}`);
    assert.equal(alerts[0].rule, 'bad-binary');
    assert.equal(alerts[0].pid, a.pid);
    assert.equal(alerts[0].message, `${copy} is listed`);
    assert.ok(summary.hash && summary.hash.hashed >= 2, `hash stats: ${JSON.stringify(summary.hash)}`);
  } finally {
    await live?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

// Exe hashing off the event path: a 500 MiB sparse executable exec'd right before a normal one. The big
// one's exec event carries sha256_error (over the size cap: too_large; under a cap that admits it: the
// deadline passes first, timeout) and a rule reads it; the normal exec is not held behind the big file:
// its alert comes sooner after its exec than hashing the big file takes (measured in the same run).
test('live: a huge executable does not hold back the exec after it; its event carries sha256_error', { skip: needLiveBpf() }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-hash-big-'));
  try {
    const big = join(dir, 'big');
    copyFileSync('/bin/true', big);
    truncateSync(big, 500 << 20); // sparse: an ELF with 500 MiB of holes still runs
    const small = join(dir, 'small');
    copyFileSync('/bin/true', small);
    // what hashing the big file costs here, now, read as the reader does (the relative yardstick)
    const t = performance.now();
    const fd = openSync(big, 'r');
    const h = createHash('sha256');
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = readSync(fd, buf)) > 0;) h.update(buf.subarray(0, n));
    closeSync(fd);
    const bigHashMs = performance.now() - t;

    const { loadRuleSources } = await import('../../engine/rules/load.ts');
    const { runLive } = await import('../../cli/live-runs.ts');
    const { startSignals } = await import('../../signals/live.ts');
    const { ExeHasher } = await import('../../signals/hash.ts');
    const loaded = loadRuleSources([{
      file: 'big.json',
      text: JSON.stringify({
        rules: [
          {
            id: 'not-hashed', description: 'exec without a hash', tags: ['t'], severity: 'low', mode: 'monitor',
            match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'sha256_error', operator: 'exists', value: true }, { fact: 'exe', path: '$.path', operator: 'startsWith', value: dir }] },
            actions: [{ type: 'alert', message: '{exe.path} {sha256_error}' }],
          },
          {
            id: 'small-ran', description: 'the small one', tags: ['t'], severity: 'low', mode: 'monitor',
            match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'exe', path: '$.path', operator: 'equal', value: small }] },
            actions: [{ type: 'alert', message: 'sha={sha256} err={sha256_error}' }],
          },
        ],
      }),
    }]);
    assert.ok(loaded.ok && loaded.set, JSON.stringify(loaded.issues));

    for (const [cap, want] of [[undefined, 'too_large'], [1 << 30, 'timeout']] as const) {
      // the deadline well under what the big file takes, so that under a cap that admits it the deadline passes first
      const hasher = new ExeHasher({ maxBytes: cap, deadlineMs: Math.min(300, bigHashMs / 3) });
      const live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
      let stop!: () => void;
      const outs: { o: Output; at: number }[] = [];
      const running = runLive({ rules: loaded.set, live, stop: new Promise<void>((r) => (stop = r)), hashExe: hasher }, (o) => outs.push({ o, at: performance.now() }));
      try {
        await hasher.start();
        const a = spawn(big, [], { stdio: 'ignore' });
        await new Promise((r) => a.once('spawn', r));
        const smallAt = performance.now();
        const b = spawn(small, [], { stdio: 'ignore' });
        await Promise.all([new Promise((r) => a.once('exit', r)), new Promise((r) => b.once('exit', r))]);
        for (let i = 0; i < 200 && outs.filter((x) => x.o.kind === 'alert').length < 2; i++) await new Promise((r) => setTimeout(r, 20));
        const alerts = outs.filter((x): x is { o: AlertOut; at: number } => x.o.kind === 'alert');
        const bigAlert = alerts.find((x) => x.o.rule === 'not-hashed');
        const smallAlert = alerts.find((x) => x.o.rule === 'small-ran');
        assert.equal(bigAlert?.o.message, `${big} ${want}`, `cap ${cap}: ${JSON.stringify(alerts.map((x) => x.o.message))}`);
        assert.equal(smallAlert?.o.message, `sha=${sha(small)} err=?`, 'the normal exec is hashed');
        const heldMs = smallAlert!.at - smallAt;
        // held behind the big file, it would come when that hash is done: about bigHashMs after
        assert.ok(heldMs < bigHashMs / 2, `cap ${cap}: the normal exec came ${heldMs.toFixed(0)} ms after it ran; hashing the big file takes ${bigHashMs.toFixed(0)} ms`);
        if (cap) {
          // the big file is hashed all the same (into the cache): the normal exec came before that was done
          for (let i = 0; i < 1500 && hasher.stats().bytes < 500 << 20; i++) await new Promise((r) => setTimeout(r, 10));
          const bigDone = performance.now();
          assert.ok(hasher.stats().bytes >= 500 << 20, `the big file read: ${JSON.stringify(hasher.stats())}`);
          assert.ok(smallAlert!.at < bigDone, 'the normal exec went on before the big file\'s hash was done');
        }
      } finally {
        stop();
        await running; // stops the signals (detached) and the hasher
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
