// Record live, then replay the recorded log: the same alerts and verdicts for the processes the test
// started (krsi run --record's pipeline, runLive, against the replay path: readEvents + Engine).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needCc, needLiveBpf } from '../helpers/prereq.ts';
import type { Output } from '../../engine/types.ts';
import type { KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';

const skip = needLiveBpf() ?? needCc();
const HELPER_C = fileURLToPath(new URL('./fixtures/helper.c', import.meta.url));

/** what must match between live and replay */
function key(o: Output): string {
  if (o.kind === 'summary') return 'summary';
  if (o.kind === 'denied') return JSON.stringify([o.kind, o.rule, o.pid, o.seq]);
  return JSON.stringify([o.kind, o.rule, o.pid, o.events, o.message]);
}

test('record live, replay the log: the same alerts as live', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-rec-'));
  let live: LiveSignals | undefined;
  try {
    const helper = join(dir, 'helper');
    assert.equal(spawnSync('cc', ['-O2', '-o', helper, HELPER_C]).status, 0, 'cc helper.c');
    const so = join(dir, 'preload.so');
    assert.equal(spawnSync('cc', ['-shared', '-fPIC', '-o', so, '-x', 'c', '-'], { input: 'int x;\n' }).status, 0, 'cc preload.so');
    const { loadRuleDirs, BUNDLED_RULES_DIR } = await import('../../engine/rules/load.ts');
    const { Engine } = await import('../../engine/engine.ts');
    const { readEvents } = await import('../../engine/eventlog/index.ts');
    const { runLive } = await import('../../cli/live-runs.ts');
    const { startSignals } = await import('../../signals/live.ts');
    const rules = await loadRuleDirs([BUNDLED_RULES_DIR]);
    const log = join(dir, 'log');

    live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
    const seen: KrsiEvent[] = [];
    live.events$.subscribe((e) => seen.push(e));
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const liveOut: Output[] = [];
    const running = runLive({ rules, record: log, live, stop: stopped }, (o) => liveOut.push(o));

    // the three scenarios
    const pids = new Set<number>();
    const a = spawnSync(helper, ['selfdel', dir]);
    const b = spawnSync('env', [`LD_PRELOAD=${so}`, '/bin/true']);
    const c = spawnSync(helper, ['flips', '150']); // 150 W->X flips: what mprotect-storm counts (issue 11)
    for (const r of [a, b, c]) {
      assert.equal(r.status, 0);
      pids.add(r.pid!);
    }
    for (let i = 0; i < 100 && [...pids].some((p) => !seen.some((e) => e.type === 'exit' && e.pid === p)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    stop();
    const summary = await running;
    live = undefined; // runLive stopped it
    assert.ok(summary.events > 0);

    const ours = (outs: Output[]) => outs.filter((o) => o.kind !== 'summary' && pids.has(o.pid)).map(key).sort();
    const liveKeys = ours(liveOut);
    const rulesFired = new Set(liveOut.filter((o) => o.kind !== 'summary' && pids.has(o.pid)).map((o) => (o as { rule: string }).rule));
    for (const r of ['self-deleting-executable', 'ld-preload-at-exec', 'mprotect-storm']) assert.ok(rulesFired.has(r), `${r} fired live (${[...rulesFired].join(', ')})`);

    const engine = new Engine({ rules });
    const replayOut: Output[] = [];
    let n = 0;
    for await (const batch of readEvents(log)) for (const e of batch) n++, engine.push(e, (o) => replayOut.push(o));
    engine.finish((o) => replayOut.push(o));
    assert.equal(n, summary.events, 'every live event is in the log');
    assert.deepEqual(ours(replayOut), liveKeys);
  } finally {
    await live?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('krsi run --record into something that is not a log fails before any signal program is loaded', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-rec-'));
  try {
    const { loadRuleDirs, BUNDLED_RULES_DIR } = await import('../../engine/rules/load.ts');
    const { runLive } = await import('../../cli/live-runs.ts');
    const rules = await loadRuleDirs([BUNDLED_RULES_DIR]);
    const notALog = join(dir, 'file');
    writeFileSync(notALog, 'x');
    /** BPF programs and links this process holds (its open fds) */
    const ours = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return /^anon_inode:bpf[-_](prog|link)$/.test(readlinkSync(`/proc/self/fd/${fd}`));
        } catch {
          return false; // the fd of readdir itself, closed meanwhile
        }
      });
    assert.deepEqual(ours(), []);
    await assert.rejects(runLive({ rules, record: notALog, signals: { lostInterval: 0, modulesInterval: 0 }, stop: new Promise(() => {}) }, () => {}), /exists and is not an lmdb event log/);
    assert.deepEqual(ours(), [], 'signal programs were left loaded');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
