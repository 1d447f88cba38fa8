// bin/krsi.js, the launcher: SIGUSR1 does not open Node's inspector (code execution inside krsi, which its
// own enforcement exempts); in a checkout it refuses to run a dist/ older than the sources, and says what to run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KRSI } from '../helpers/krsi.ts';

const STALE = fileURLToPath(new URL('../../scripts/stale.mjs', import.meta.url));

/** TCP sockets in LISTEN state that `pid` holds, as "addr:port" (hex, from /proc/net/tcp and tcp6) */
function listening(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const out: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9])) out.push(f[1]);
    }
  }
  return out;
}

/** anything on port 9229 (0x240D) in LISTEN state, whoever holds it */
function port9229(): string[] {
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((t) => readFileSync(t, 'utf8').split('\n').filter((l) => / [0-9A-F]+:240D [0-9A-F]+:0000 0A /.test(l)));
}

describe('SIGUSR1', () => {
  test('a running krsi gets SIGUSR1: no inspector listens, krsi goes on and exits normally', async () => {
    const before9229 = port9229().length;
    // replay from stdin runs as long as stdin is open; a bad line's "skipped" shows the CLI is running
    const p = spawn(process.execPath, [KRSI, 'replay', '-', '--skip-bad', '--format', 'json'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, KRSI_LOG_LEVEL: 'warn' } });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = once(p, 'exit');
    try {
      p.stdin.write('not json\n');
      for (let i = 0; i < 600 && !stderr.includes('skipped'); i++) await new Promise((r) => setTimeout(r, 50));
      assert.match(stderr, /skipped/, 'krsi never read its input');
      assert.ok(p.kill('SIGUSR1'));
      // the inspector would start on its own thread: give it time
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(p.exitCode, null, `krsi ended on SIGUSR1: ${stderr}`);
      assert.deepEqual(listening(p.pid!), [], 'krsi listens on a TCP port');
      assert.equal(port9229().length, before9229, 'something listens on 9229');
      assert.doesNotMatch(stderr, /Debugger listening/);
      p.stdin.end();
      const [code] = await exited;
      assert.equal(code, 0, stderr);
      assert.match(stdout, /"kind":"summary"/);
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  });
});

describe('in a checkout', () => {
  // a checkout's shape in a temp dir: the launcher, one source, a "compiled" dist/engine/cli.js
  function layout(o: { source: boolean; stamp?: number }): string {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-launcher-'));
    for (const d of ['bin', 'scripts', 'dist/engine']) mkdirSync(join(dir, d), { recursive: true });
    copyFileSync(KRSI, join(dir, 'bin', 'krsi.js'));
    copyFileSync(STALE, join(dir, 'scripts', 'stale.mjs'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'dist', 'engine', 'cli.js'), "process.stdout.write('dist ran\\n');");
    for (const d of ['engine', 'signals', 'enforcers', 'bpf']) mkdirSync(join(dir, d), { recursive: true });
    if (o.source) writeFileSync(join(dir, 'engine', 'cli.ts'), 'throw new Error("the TypeScript source ran");');
    if (o.stamp !== undefined) {
      writeFileSync(join(dir, 'dist', '.built'), '');
      utimesSync(join(dir, 'dist', '.built'), new Date(o.stamp), new Date(o.stamp));
    }
    return dir;
  }
  const run = (dir: string) => spawnSync(process.execPath, [join(dir, 'bin', 'krsi.js'), 'status'], { encoding: 'utf8', cwd: dir, env: { ...process.env, TMPDIR: dir } });

  test('dist/ never built: exit 3, "run npm run build"', () => {
    const dir = layout({ source: true });
    try {
      const r = run(dir);
      assert.equal(r.stderr, 'krsi: dist/ is not built: run npm run build\n');
      assert.equal(r.status, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a source newer than dist/: exit 3, naming the source', () => {
    const dir = layout({ source: true, stamp: Date.now() - 60_000 });
    try {
      const r = run(dir);
      assert.equal(r.stderr, `krsi: dist/ is older than ${join(dir, 'engine', 'cli.ts')}: run npm run build\n`);
      assert.equal(r.status, 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('dist/ built after the sources: the compiled JavaScript runs, nothing written to TMPDIR', () => {
    const dir = layout({ source: true, stamp: Date.now() + 60_000 });
    try {
      const before = readdirSync(dir).sort();
      const r = run(dir);
      assert.equal(r.stdout, 'dist ran\n', r.stderr);
      assert.equal(r.status, 0);
      assert.deepEqual(readdirSync(dir).sort(), before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an installed package (no sources): dist/ runs, no stamp needed', () => {
    const dir = layout({ source: false });
    try {
      const r = run(dir);
      assert.equal(r.stdout, 'dist ran\n', r.stderr);
      assert.equal(r.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
