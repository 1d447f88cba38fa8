// The user-space module_list signal: /proc/modules parsing, snapshots at start, periodically and after
// each module_load (virtual time), and unavailability without /proc/modules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { moduleList$, moduleListUnavailable, parseModules } from '../../signals/modules.ts';
import type { KrsiEvent } from '../../signals/events.ts';

const PROC = 'nf_tables 352256 0 - Live 0x0000000000000000\next4 1060864 1 - Live 0x0000000000000000\n';

test('parseModules: names of /proc/modules, sorted', () => {
  assert.deepEqual(parseModules(PROC), ['ext4', 'nf_tables']);
  assert.deepEqual(parseModules(''), []);
});

test('unavailable without /proc/modules', () => {
  assert.match(moduleListUnavailable('/nonexistent/modules') ?? '', /missing/);
});

test('snapshots at start, every interval, and right after a module_load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-mod-'));
  try {
    const path = join(dir, 'modules');
    writeFileSync(path, PROC);
    const ts = new TestScheduler((a, b) => assert.deepEqual(a, b));
    ts.run(({ cold, expectObservable }) => {
      const load = { type: 'module_load', name: 'evil' } as unknown as KrsiEvent;
      const other = { type: 'exec' } as unknown as KrsiEvent;
      const events$ = cold('---a--l---', { a: other, l: load });
      const out$ = moduleList$({ interval: 8, events$, path, now: () => 42, scheduler: ts }).pipe(map((e) => `${e.type}:${e.modules.join(',')}:${e.ts}`));
      const snap = 'module_list:ext4,nf_tables:42';
      expectObservable(out$, '^ 20ms !').toBe('s-----s-s-------s---', { s: snap });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
