// bpf/build.ts: compiles when stale, not otherwise; generates vmlinux.h for CO-RE programs; names the
// Debian package when clang is missing.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { needBpftool, needClang, needLibbpf } from '../helpers/prereq.ts';
import { BUILD_DIR, ensureObject } from '../../bpf/build.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const BUILD_TS = fileURLToPath(new URL('../../bpf/build.ts', import.meta.url));

describe('ensureObject', () => {
  test('builds when the object is missing or older than its source, not otherwise', { skip: needClang() ?? needLibbpf() }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-build-'));
    const src = join(dir, `stale${process.pid}.bpf.c`);
    try {
      copyFileSync(join(FIXTURES, 'basic.bpf.c'), src);
      const out = ensureObject(src);
      assert.equal(out, join(BUILD_DIR, 'ext', `stale${process.pid}.o`));
      const first = statSync(out).mtimeMs;
      assert.equal(ensureObject(src), out);
      assert.equal(statSync(out).mtimeMs, first, 'rebuilt although up to date');
      const later = new Date(Date.now() + 5000);
      utimesSync(src, later, later);
      ensureObject(src);
      assert.ok(statSync(out).mtimeMs > first, 'not rebuilt although the source is newer');
      rmSync(out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a CO-RE program gets bpf/build/vmlinux.h generated', { skip: needClang() ?? needBpftool() ?? (existsSync('/sys/kernel/btf/vmlinux') ? undefined : 'no kernel BTF') }, () => {
    const out = ensureObject(join(FIXTURES, 'core.bpf.c'));
    assert.ok(existsSync(out));
    assert.ok(statSync(join(BUILD_DIR, 'vmlinux.h')).size > 100_000);
  });

  test('a compile error names the file and shows clang output', { skip: needClang() }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-build-'));
    try {
      const src = join(dir, 'broken.bpf.c');
      spawnSync('sh', ['-c', `echo 'int x(void) { return y; }' > ${src}`]);
      assert.throws(() => ensureObject(src), (e: Error) => e.message.includes(`compiling ${src} failed`) && /undeclared identifier 'y'/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without clang the error names the Debian package', () => {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-build-'));
    try {
      const src = join(dir, 'nocc.bpf.c');
      spawnSync('sh', ['-c', `echo 'int x;' > ${src}`]);
      const code = `import(${JSON.stringify(BUILD_TS)}).then((m) => m.ensureObject(${JSON.stringify(src)})).catch((e) => { process.stdout.write(e.message); })`;
      const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' }, cwd: fileURLToPath(new URL('../..', import.meta.url)) });
      assert.match(r.stdout, /clang not found: install the Debian package clang/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
