// The shipped package: `npm pack`, then `npm install` of the tarball into an empty directory, and krsi runs
// there as plain JavaScript. It runs with no clang on PATH (the BPF objects come built in the package), from
// a working directory holding a hostile tsconfig.json, with TMPDIR an empty directory: nothing may compile
// TypeScript, read a tsconfig or write a cache (tsx's $TMPDIR/tsx-0 let a local user plant code run as root).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needClang, needLiveBpf, needRoot } from '../helpers/prereq.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const skip = spawnSync('npm', ['--version'], { stdio: 'ignore' }).status === 0 ? needClang() : 'needs npm';

// every module Node loads through the ESM loader, one URL a line, into $KRSI_TRACE
const HOOKS = `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) { appendFileSync(process.env.KRSI_TRACE, url + '\\n'); return next(url, context); }`;
const REGISTER = `import { register } from 'node:module'; register('./hooks.mjs', import.meta.url);`;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => join(dir, f));
}

describe('npm pack, installed into an empty directory', { skip }, () => {
  let dir = '';
  let inst = '';
  let krsi = '';
  let hostile = '';
  let tmp = '';
  let pbin = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'krsi-pack-'));
    // readable by nobody (the not-root test), wherever the checkout is and whatever its mode
    chmodSync(dir, 0o755);
    const p = spawnSync('npm', ['pack', '--pack-destination', dir], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 180_000 });
    assert.equal(p.status, 0, `npm pack: ${p.stderr}`);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tgz, `no tarball in ${dir}`);
    inst = join(dir, 'inst');
    mkdirSync(inst, { mode: 0o755 });
    const i = spawnSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, tgz)], { cwd: inst, encoding: 'utf8', timeout: 180_000 });
    assert.equal(i.status, 0, `npm install: ${i.stderr}`);
    krsi = join(inst, 'node_modules', '.bin', 'krsi');

    // a working directory whose tsconfig.json maps commander to a planted file (read by tsx, run as root)
    hostile = join(dir, 'cwd');
    mkdirSync(hostile);
    writeFileSync(join(hostile, 'tsconfig.json'), JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { commander: ['./evil.js'], '*': ['./evil.js'] } } }));
    writeFileSync(join(hostile, 'evil.js'), `require('node:fs').writeFileSync(${JSON.stringify(join(dir, 'pwned'))}, 'x');`);
    writeFileSync(join(hostile, 'hooks.mjs'), HOOKS);
    writeFileSync(join(hostile, 'register.mjs'), REGISTER);
    tmp = join(dir, 'tmp');
    mkdirSync(tmp, { mode: 0o1777 });
    // PATH: node and sh, no clang
    pbin = join(dir, 'bin');
    mkdirSync(pbin);
    symlinkSync(process.execPath, join(pbin, 'node'));
    symlinkSync('/bin/sh', join(pbin, 'sh'));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function run(args: string[], trace: string) {
    const env = { PATH: pbin, TMPDIR: tmp, HOME: hostile, KRSI_LOG_LEVEL: 'warn', KRSI_TRACE: trace, NODE_OPTIONS: `--import=${join(hostile, 'register.mjs')}` };
    return spawnSync(krsi, args, { cwd: hostile, env, encoding: 'utf8', timeout: 60_000 });
  }

  test('the package holds compiled JavaScript, the BPF objects and the rules; no TypeScript, no dev dependencies', () => {
    const pkg = join(inst, 'node_modules', 'krsi');
    const files = filesUnder(pkg);
    assert.deepEqual(files.filter((f) => /\.[mc]?ts$/.test(f)), []);
    for (const f of ['bin/krsi.js', 'dist/cli/main.js', 'bpf/build/signals.o', 'bpf/build/enforce.o', 'bpf/build/probe.o', 'rules/schema.json', 'rules/samples/sample.jsonl']) {
      assert.ok(existsSync(join(pkg, f)), `${f} missing from the package`);
    }
    for (const dev of ['tsx', 'typescript', 'esbuild', 'get-tsconfig']) assert.ok(!existsSync(join(inst, 'node_modules', dev)), `${dev} installed`);
    // every run-time source compiled, the ones spawned as scripts (not imported) too
    const sources = ['cli', 'engine', 'signals', 'enforcers', 'bpf', 'lib'].flatMap((d) => readdirSync(join(REPO_ROOT, d), { recursive: true, encoding: 'utf8' }).map((f) => join(d, f)));
    const missing = sources.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')).map((f) => f.replace(/\.ts$/, '.js')).filter((f) => !existsSync(join(pkg, 'dist', f)));
    assert.deepEqual(missing, [], 'sources missing from dist/');
  });

  test('replay, check, test and status run as plain JavaScript: no clang, no tsconfig read, nothing in TMPDIR', () => {
    assert.notEqual(spawnSync('sh', ['-c', 'command -v clang'], { env: { PATH: pbin } }).status, 0, 'clang on the test PATH');
    // reading a file whose atime is older than its mtime updates the atime (relatime): a probe tells if this fs does
    const tsconfig = join(hostile, 'tsconfig.json');
    const old = new Date('2000-01-01');
    utimesSync(tsconfig, old, new Date());
    const probe = join(hostile, 'atime-probe');
    writeFileSync(probe, 'x');
    utimesSync(probe, old, new Date());
    readFileSync(probe);
    const atimeWorks = statSync(probe).atimeMs > old.getTime();

    const trace = join(dir, 'trace');
    const cmds: [string[], (out: string) => void][] = [
      [['replay', '--format', 'json'], (out) => assert.match(out, /"kind":"summary"/)],
      [['check'], () => {}],
      [['test'], () => {}],
      [['status', '--format', 'json'], (out) => {
        const s = JSON.parse(out);
        // root with libbpf: the packaged probe.o loaded, built by no one here
        if (!needLiveBpf()) assert.equal(s.tracepoints, true, out);
      }],
    ];
    for (const [args, check] of cmds) {
      const r = run(args, trace);
      assert.equal(r.status, 0, `krsi ${args.join(' ')}: ${r.stderr}`);
      check(r.stdout);
    }
    assert.deepEqual(readdirSync(tmp), [], 'krsi wrote into TMPDIR');
    assert.ok(!existsSync(join(dir, 'pwned')), 'the planted module ran');
    if (atimeWorks) assert.equal(statSync(tsconfig).atimeMs, old.getTime(), 'tsconfig.json in the working directory was read');
    const loaded = readFileSync(trace, 'utf8').trim().split('\n');
    const krsiDist = loaded.filter((u) => u.includes('/node_modules/krsi/dist/'));
    assert.ok(krsiDist.length > 20, `dist modules loaded: ${krsiDist.length}`);
    const outside = loaded.filter((u) => !u.startsWith('node:') && !u.startsWith(`file://${inst}/node_modules/`) && !u.startsWith(`file://${hostile}/hooks.mjs`));
    assert.deepEqual(outside, [], 'modules loaded from outside the installed package');
    assert.deepEqual(loaded.filter((u) => /\.[mc]?ts$/.test(u)), [], 'TypeScript loaded');
  });

  test('not root: krsi run from the installed package says it needs root, exit 3', { skip: needRoot() ?? (spawnSync('sh', ['-c', 'command -v setpriv']).status === 0 ? undefined : 'needs setpriv to drop to nobody') }, () => {
    // run from the world-readable install: a checkout may sit in a private directory (root cloning into /root)
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', krsi, 'run', '--mode', 'monitor', '--duration', '1'], {
      cwd: inst, encoding: 'utf8', timeout: 60_000, env: { PATH: `${pbin}:/usr/bin:/bin`, TMPDIR: tmp, KRSI_LOG_LEVEL: 'warn' },
    });
    assert.equal(r.stderr.trim(), 'krsi run: needs root (CAP_BPF, CAP_PERFMON)');
    assert.equal(r.status, 3);
    assert.deepEqual(readdirSync(tmp), [], 'krsi wrote into TMPDIR');
  });
});
