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

test('snapshots at start, every interval, and settleMs after a module_load or module_unload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-mod-'));
  try {
    const path = join(dir, 'modules');
    writeFileSync(path, PROC);
    const ts = new TestScheduler((a, b) => assert.deepEqual(a, b));
    ts.run(({ cold, expectObservable }) => {
      const load = { type: 'module_load', name: 'evil' } as unknown as KrsiEvent;
      const unload = { type: 'module_unload', name: 'evil' } as unknown as KrsiEvent;
      const other = { type: 'exec' } as unknown as KrsiEvent;
      const events$ = cold('---a--l--u---', { a: other, l: load, u: unload });
      const out$ = moduleList$({ interval: 8, events$, path, now: () => 42, scheduler: ts, settleMs: 3 }).pipe(map((e) => `${e.type}:${e.modules.join(',')}:${e.ts}`));
      const snap = 'module_list:ext4,nf_tables:42';
      // at 0, 8, 16 (interval); 6 + 3 (load), 9 + 3 (unload)
      expectObservable(out$, '^ 20ms !').toBe('s-------ss--s---s---', { s: snap });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('afterRead runs after each read and before its snapshot is emitted (live: the ring is drained there)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-mod-'));
  try {
    const path = join(dir, 'modules');
    writeFileSync(path, PROC);
    const order: string[] = [];
    const ts = new TestScheduler((a, b) => assert.deepEqual(a, b));
    ts.run(({ expectObservable }) => {
      const out$ = moduleList$({ interval: 5, path, now: () => 1, scheduler: ts, afterRead: () => order.push('drain') }).pipe(
        map(() => {
          order.push('snapshot');
          return 's';
        }),
      );
      expectObservable(out$, '^ 11ms !').toBe('s----s----s-');
    });
    assert.deepEqual(order.slice(0, 6), ['drain', 'snapshot', 'drain', 'snapshot', 'drain', 'snapshot']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
