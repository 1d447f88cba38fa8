// krsi log import|export|info through the CLI.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEvents } from '../../bench/gen.ts';
import { krsiSync } from '../helpers/krsi.ts';

let dir: string;
before(() => (dir = mkdtempSync(join(tmpdir(), 'krsi-log-cli-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const krsi = (...args: string[]) => krsiSync(args);

test('krsi log import stops at a bad line (exit 1, located) keeping what came before; export and info', () => {
  const events = [...generateEvents({ count: 1000, seed: 5 })];
  const good = events.map((e) => JSON.stringify(e) + '\n');
  const src = join(dir, 'src.jsonl');
  writeFileSync(src, good.slice(0, 600).join('') + '{"ts": 1, "type": "exec"}\n' + good.slice(600).join(''));
  const log = join(dir, 'log');
  const r = krsi('log', 'import', src, log);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`src\\.jsonl:601: field pid: missing`));
  assert.match(r.stderr, /events before line 601 are committed/);

  const info = krsi('log', 'info', log, '--format', 'json');
  assert.equal(info.status, 0, info.stderr);
  const s = JSON.parse(info.stdout);
  assert.equal(s.count, 600);
  assert.equal(s.version, 'krsi-eventlog-3');
  assert.equal(s.first_ts, events[0].ts);
  assert.equal(s.last_ts, events[599].ts);

  const out = krsi('log', 'export', log);
  assert.equal(out.status, 0, out.stderr);
  assert.equal(out.stdout, good.slice(0, 600).join(''));

  const skip = krsi('log', 'import', '--skip-bad', src, join(dir, 'log2'));
  assert.equal(skip.status, 0, skip.stderr);
  assert.match(skip.stderr, /imported 1000 events .*1 bad lines skipped/);
});
