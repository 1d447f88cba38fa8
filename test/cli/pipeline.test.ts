// krsi replay, run and record go through one RxJS pipeline: each stage is an operator built through
// lib/rx/operate.ts, which counts what it passes on, and KRSI_PIPELINE_TRACE=1 prints the stages a
// command ran, source first. These runs prove which stages ran, and that replay and live share theirs.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { krsiSync } from '../helpers/krsi.ts';
import { needLiveBpf } from '../helpers/prereq.ts';

const env = { ...process.env, KRSI_PIPELINE_TRACE: '1' };

/** the stages of the trace line, with the values each passed on */
function stages(stderr: string): [string, number][] {
  const line = stderr.split('\n').find((l) => l.startsWith('krsi: pipeline: '));
  assert.ok(line, `a pipeline trace on stderr: ${stderr}`);
  return line.slice('krsi: pipeline: '.length).split(' → ').map((s) => {
    const [name, n] = s.split(' ');
    return [name, Number(n)];
  });
}

const names = (t: [string, number][]) => t.map(([n]) => n);

describe('one pipeline', () => {
  test('krsi replay: fromLog → krsiEngine (evaluate, summarize) → output', () => {
    const r = krsiSync(['replay', '--format', 'json'], { env });
    assert.equal(r.status, 0, r.stderr);
    const t = stages(r.stderr);
    assert.deepEqual(names(t), ['from-log', 'first-event', 'evaluate', 'summarize', 'output']);
    const outputs = r.stdout.trim().split('\n').length;
    assert.ok(t[0][1] > 0, 'batches read');
    assert.equal(t.at(-1)![1], outputs, 'every output went through the output stage');
    assert.equal(t.find(([n]) => n === 'summarize')![1], outputs, 'and through summarize');
  });

  test('krsi run and krsi record (live BPF): the same engine stages as replay, behind the live source', { skip: needLiveBpf() }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-pipeline-'));
    try {
      const log = join(dir, 'log');
      const run = krsiSync(['run', '--mode', 'monitor', '--format', 'json', '--duration', '2', '--record', log], { env, timeout: 120_000 });
      assert.equal(run.status, 0, run.stderr);
      const live = names(stages(run.stderr));
      assert.deepEqual(live.slice(0, 3), ['signals', 'exe-hashes', 'record'], live.join(' '));
      for (const s of ['heartbeat', 'evaluate', 'summarize', 'output']) assert.ok(live.includes(s), `${s} in ${live.join(' ')}`);
      assert.ok(live.indexOf('heartbeat') < live.indexOf('evaluate') && live.indexOf('evaluate') < live.indexOf('summarize') && live.indexOf('summarize') < live.indexOf('output'));

      const replay = krsiSync(['replay', '--format', 'json', log], { env });
      assert.equal(replay.status, 0, replay.stderr);
      const rp = names(stages(replay.stderr));
      // what differs is the source (and live's heartbeat, which only moves event time)
      const engineStages = (xs: string[]) => xs.filter((s) => ['evaluate', 'summarize', 'output'].includes(s));
      assert.deepEqual(engineStages(rp), engineStages(live));

      const rec = krsiSync(['record', join(dir, 'log2'), '--duration', '1'], { env, timeout: 120_000 });
      assert.equal(rec.status, 0, rec.stderr);
      assert.deepEqual(names(stages(rec.stderr)).slice(0, 3), ['signals', 'exe-hashes', 'record']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
