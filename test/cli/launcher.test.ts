// bin/krsi.js, the launcher: SIGUSR1 does not open Node's inspector (code execution inside krsi, which its
// own enforcement exempts); in a checkout it refuses to run a dist/ older than the sources, and says what to run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KRSI } from '../helpers/krsi.ts';

const STALE = fileURLToPath(new URL('../../bin/stale.mjs', import.meta.url));

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

// `krsi replay -` runs as long as its stdin is open; a bad line's "skipped" shows the CLI is running
function startReplay(argv: string[]) {
  const env = { ...process.env, KRSI_LOG_LEVEL: 'warn', PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
  const p = spawn(argv[0], [...argv.slice(1), 'replay', '-', '--skip-bad', '--format', 'json'], { stdio: ['pipe', 'pipe', 'pipe'], env });
  const r = { p, stdout: '', stderr: '', exited: once(p, 'exit') };
  p.stdout.setEncoding('utf8').on('data', (d: string) => (r.stdout += d));
  p.stderr.setEncoding('utf8').on('data', (d: string) => (r.stderr += d));
  return r;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function running(r: ReturnType<typeof startReplay>): Promise<void> {
  r.p.stdin.write('not json\n');
  for (let i = 0; i < 600 && !r.stderr.includes('skipped'); i++) await sleep(50);
  assert.match(r.stderr, /skipped/, 'krsi never read its input');
}

// after SIGUSR1: krsi still runs, holds no listening socket, and ends normally with its summary
async function unharmed(r: ReturnType<typeof startReplay>, before9229: number): Promise<void> {
  // the inspector would start on its own thread: give it time
  await sleep(1500);
  assert.equal(r.p.exitCode, null, `krsi ended on SIGUSR1: ${r.stderr}`);
  assert.deepEqual(listening(r.p.pid!), [], 'krsi listens on a TCP port');
  assert.equal(port9229().length, before9229, 'something listens on 9229');
  r.p.stdin.end();
  const [code] = await r.exited;
  assert.equal(code, 0, r.stderr);
  assert.match(r.stdout, /"kind":"summary"/);
}

describe('SIGUSR1', () => {
  test('a running krsi gets SIGUSR1: no inspector listens, krsi goes on and exits normally', async () => {
    const before9229 = port9229().length;
    const r = startReplay([process.execPath, KRSI]);
    try {
      await running(r);
      assert.ok(r.p.kill('SIGUSR1'));
      await unharmed(r, before9229);
      assert.doesNotMatch(r.stderr, /Debugger listening/);
    } finally {
      if (r.p.exitCode === null) r.p.kill('SIGKILL');
    }
  });

  test('SIGUSR1 during Node\'s start-up (run through the shebang): the inspector it may open is closed, its URL never published over HTTP', async () => {
    const before9229 = port9229().length;
    const r = startReplay([KRSI]);
    try {
      // as soon as Node has its own SIGUSR1 handler (before it, SIGUSR1 would just kill the process)
      const pid = r.p.pid!;
      for (let i = 0; i < 20_000 && !(parseInt(/SigCgt:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1], 16) & 0x200); i++) await sleep(1);
      assert.ok(r.p.kill('SIGUSR1'));
      assert.ok(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--inspect-publish-uid=stderr'), 'node runs without --inspect-publish-uid=stderr');
      // what a local user would do while the inspector is up: ask it for the session's URL
      for (let i = 0; i < 200; i++) {
        const list = await fetch('http://127.0.0.1:9229/json/list', { signal: AbortSignal.timeout(500) }).then((res) => res.text(), () => '');
        assert.doesNotMatch(list, /webSocketDebuggerUrl/, 'the inspector published its URL');
        await sleep(3);
      }
      await running(r);
      await unharmed(r, before9229);
    } finally {
      if (r.p.exitCode === null) r.p.kill('SIGKILL');
    }
  });
});

describe('in a checkout', () => {
  // a checkout's shape in a temp dir: the launcher, one source, a "compiled" dist/cli/main.js
  function layout(o: { source: boolean; stamp?: number }): string {
    const dir = mkdtempSync(join(tmpdir(), 'krsi-launcher-'));
    for (const d of ['bin', 'dist/cli']) mkdirSync(join(dir, d), { recursive: true });
    copyFileSync(KRSI, join(dir, 'bin', 'krsi.js'));
    copyFileSync(STALE, join(dir, 'bin', 'stale.mjs'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    writeFileSync(join(dir, 'dist', 'cli', 'main.js'), "process.stdout.write('dist ran\\n');");
    for (const d of ['cli', 'engine', 'signals', 'enforcers', 'bpf', 'lib']) mkdirSync(join(dir, d), { recursive: true });
    if (o.source) writeFileSync(join(dir, 'cli', 'main.ts'), 'throw new Error("the TypeScript source ran");');
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
      assert.equal(r.stderr, `krsi: dist/ is older than ${join(dir, 'cli', 'main.ts')}: run npm run build\n`);
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
