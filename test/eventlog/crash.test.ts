// Crash safety of the lmdb log: an import killed with SIGKILL midway leaves a log that opens, holds a
// prefix of the source (seq 1..k, nothing torn or out of order), and can be appended to.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KrsiEvent } from '../../signals/events.ts';
import { LogWriter, readEvents } from '../../engine/eventlog/index.ts';
import { generateEvents, writeJsonl } from '../../bench/gen.ts';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-crash-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const INDEX = fileURLToPath(new URL('../../engine/eventlog/index.ts', import.meta.url));

test('SIGKILL during import: the log keeps a consistent prefix and accepts more', async () => {
  const gen = { count: 300_000, seed: 3 };
  const src = join(dir, 'src.jsonl');
  await writeJsonl(src, gen);
  const log = join(dir, 'log');
  // the child prints each time the reader has consumed more input; we kill it at ~30 %
  const code = `import { importLog } from ${JSON.stringify(INDEX)};
    await importLog(${JSON.stringify(src)}, ${JSON.stringify(log)}, { onProgress: (d, t) => process.stdout.write(String(d / t) + '\\n') });
    process.stdout.write('done\\n');`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  let killed = false;
  let finished = false;
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    if (s.includes('done')) finished = true;
    const last = Number(s.trim().split('\n').at(-1));
    if (!killed && last > 0.3) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  await new Promise((res) => child.on('exit', res));
  assert.ok(killed && !finished, 'the import finished before it could be killed');

  const want = generateEvents(gen);
  let k = 0;
  for await (const batch of readEvents(log)) {
    for (const ev of batch) {
      k++;
      const w = want.next().value as KrsiEvent;
      assert.equal(ev.seq, k);
      assert.deepEqual({ ...ev, seq: undefined }, { ...w, seq: undefined });
    }
  }
  assert.ok(k > 0 && k < gen.count, `prefix of ${k} events`);
  // appending goes on after the committed prefix
  const w = LogWriter.open(log);
  const more = [...generateEvents({ count: 10, seed: 9, startTs: 2e12 })];
  w.append(more);
  await w.close();
  assert.deepEqual(more.map((e) => e.seq), Array.from({ length: 10 }, (_, i) => k + 1 + i));
  let n = 0;
  for await (const batch of readEvents(log, { since: 2e12 })) n += batch.length;
  assert.equal(n, 10);
});
