// Live exe hashing: a copy of /bin/true whose sha256 is on a rule's list runs; its exec event carries
// the right sha256 (live and in the recorded log) and the rule fires. /bin/false (another binary)
// gets its own sha256 and does not fire it; a copy deleted right after it starts is still hashed. Real kernel, krsi run's pipeline (runLive).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, unlinkSync } from 'node:fs';
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
    const { runLive } = await import('../../engine/commands/run.ts');
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
