// Live tests of issue 11's exec items on this kernel: fileless execution (memfd, unlinked files) and the
// loader variables (last LD_PRELOAD wins, no slot count to exhaust, bounds flagged, ld.so run as a program).
// Each technique runs as a real process (fixtures/exec-evasion.c, or coreutils), only the events of the
// pids it started count, and the bundled rules judge them. Signals are stopped in after(), always.
import { evaluate } from '../helpers/evaluate.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needCc, needLiveBpf } from '../helpers/prereq.ts';
import type { ExecEvent, KrsiEvent } from '../../signals/events.ts';
import type { LiveSignals } from '../../signals/live.ts';
import type { AlertOut } from '../../engine/types.ts';
import type { CompiledRuleSet } from '../../engine/rules/types.ts';

const skip = needLiveBpf() ?? needCc();
const FIXTURE = fileURLToPath(new URL('./fixtures/exec-evasion.c', import.meta.url));
const STDBUF_SO = '/usr/libexec/coreutils/libstdbuf.so';
const LDSO = '/lib64/ld-linux-x86-64.so.2';
const ENV_RULES = ['ld-preload-at-exec', 'ld-audit-at-exec', 'ld-library-path-world-writable', 'ldso-injection-options', 'loader-env-duplicated',
  'env-truncated-at-exec', 'glibc-tunables-exploit', 'gconv-path-at-exec', 'interpreter-injection-env', 'interpreter-path-world-writable', 'fileless-exec'];

describe('live exec evasions', { skip }, () => {
  let live: LiveSignals | undefined;
  const events: KrsiEvent[] = [];
  let dir: string;
  let fx: string;
  let rules: CompiledRuleSet;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'krsi-exec-'));
    fx = join(dir, 'exec-evasion');
    const cc = spawnSync('cc', ['-O2', '-o', fx, FIXTURE], { encoding: 'utf8' });
    assert.equal(cc.status, 0, `cc exec-evasion.c: ${cc.stderr}`);
    const { loadRuleDirs, BUNDLED_RULES_DIR } = await import('../../engine/rules/load.ts');
    rules = await loadRuleDirs([BUNDLED_RULES_DIR]);
    const { startSignals } = await import('../../signals/live.ts');
    live = await startSignals({ lostInterval: 0, modulesInterval: 0, watchEnv: ['KRSI_WATCH_ME'] });
    live.events$.subscribe((e) => events.push(e));
  });

  after(async () => {
    await live?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** run a command to its end; the last exec event of its pid (the program it became), and its alerts */
  async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<{ exec: ExecEvent; alerts: AlertOut[]; status: number | null; stdout: string; evs: KrsiEvent[] }> {
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? { PATH: '/usr/bin:/bin' }, maxBuffer: 1 << 24 });
    const pid = r.pid!;
    let evs: KrsiEvent[] = [];
    for (let i = 0; i < 100; i++) {
      evs = events.filter((e) => e.pid === pid);
      if (evs.some((e) => e.type === 'exit')) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const execs = evs.filter((e): e is ExecEvent => e.type === 'exec');
    assert.ok(execs.length, `an exec of pid ${pid} seen (${cmd} ${args.slice(0, 3).join(' ')}): ${r.stderr}`);
    return { exec: execs[execs.length - 1], alerts: await alerts(evs), status: r.status, stdout: r.stdout, evs };
  }

  async function alerts(evs: KrsiEvent[]): Promise<AlertOut[]> {
    return (await evaluate(evs, rules)).filter((o): o is AlertOut => o.kind === 'alert');
  }

  const fired = (alerts: AlertOut[], rule: string) => alerts.filter((a) => a.rule === rule);
  const envRules = (alerts: AlertOut[]) => alerts.filter((a) => ENV_RULES.includes(a.rule)).map((a) => a.rule);

  // ---- fileless execution ----

  test('memfd_create + fexecve: exe path /memfd:NAME (deleted), the memfd fact, fileless-exec fires', async () => {
    const { exec, alerts } = await run(fx, ['memfd', 'payload', '/bin/true']);
    assert.equal(exec.exe.path, '/memfd:payload (deleted)');
    assert.equal(exec.exe.memfd, true);
    assert.equal(exec.exe.nlink, 0);
    assert.equal(exec.exe.deleted, true);
    assert.equal(exec.exe.fs, 'tmpfs');
    assert.equal(fired(alerts, 'fileless-exec').length, 1);
  });

  test('memfd through execveat(AT_EMPTY_PATH): the same facts, the rule fires', async () => {
    const { exec, alerts } = await run(fx, ['memfd-at', 'at', '/bin/true']);
    assert.equal(exec.exe.path, '/memfd:at (deleted)');
    assert.equal(exec.exe.memfd, true);
    assert.equal(fired(alerts, 'fileless-exec').length, 1);
  });

  test('a memfd named like a path, or with a newline: the name is kept whole behind /memfd:, the fact is the kernel\'s', async () => {
    const a = await run(fx, ['memfd', '/usr/sbin/sshd', '/bin/true']);
    assert.equal(a.exec.exe.path, '/memfd:/usr/sbin/sshd (deleted)');
    assert.equal(a.exec.exe.memfd, true);
    const b = await run(fx, ['memfd-at', 'x\n/../y', '/bin/true']);
    assert.equal(b.exec.exe.path, '/memfd:x\n/../y (deleted)');
    assert.equal(fired(b.alerts, 'fileless-exec').length, 1);
    // the longest name memfd_create takes (249 bytes): cut, but still a memfd
    const c = await run(fx, ['memfd', 'n'.repeat(249), '/bin/true']);
    assert.equal(c.exec.exe.memfd, true);
    assert.ok(c.exec.exe.path.startsWith('/memfd:nnnn'), c.exec.exe.path);
  });

  test('a script in a memfd run by fexecve: exe is the interpreter, script names the memfd, the rule fires; a script on disk does not', async () => {
    const sh = join(dir, 'script.sh');
    writeFileSync(sh, '#!/bin/sh\nexit 0\n');
    chmodSync(sh, 0o755);
    const { exec, alerts } = await run(fx, ['memfd', 'script', sh]);
    assert.equal(exec.filename, '/dev/fd/3');
    assert.equal(exec.exe.memfd, false, 'bprm->file is the interpreter');
    assert.equal(exec.script?.memfd, true);
    assert.equal(exec.script?.nlink, 0);
    assert.equal(fired(alerts, 'fileless-exec').length, 1);
    const proc = await run(fx, ['memfd-proc', 'script2', sh]);
    assert.match(proc.exec.filename, /^\/proc\/self\/fd\/\d+$/);
    assert.equal(proc.exec.script?.memfd, true, 'execve("/proc/self/fd/N") of a memfd script');
    assert.equal(fired(proc.alerts, 'fileless-exec').length, 1);
    const elf = await run(fx, ['memfd-proc', 'elf', '/bin/true']);
    assert.equal(elf.exec.exe.memfd, true, 'an ELF through /proc/self/fd/N: the exe is the memfd');
    assert.equal(elf.exec.script, undefined);
    const disk = await run(sh, []);
    assert.equal(disk.exec.script, undefined);
    assert.deepEqual(fired(disk.alerts, 'fileless-exec'), []);
  });

  test('a file unlinked after open, run through execveat of its fd: deleted, nlink 0, the rule fires', async () => {
    const p = join(dir, 'gone');
    const { exec, alerts } = await run(fx, ['unlinked', p, '/bin/true']);
    assert.equal(exec.exe.path, `${p} (deleted)`);
    assert.equal(exec.exe.nlink, 0);
    assert.equal(exec.exe.deleted, true);
    assert.equal(exec.exe.memfd, false);
    assert.equal(fired(alerts, 'fileless-exec').length, 1);
  });

  test('a hard-linked copy whose executed name was unlinked: nlink 1 but deleted, the rule fires', async () => {
    const p = join(dir, 'linked');
    const { exec, alerts } = await run(fx, ['hardlinked', p, '/bin/true']);
    assert.equal(exec.exe.nlink, 1);
    assert.equal(exec.exe.deleted, true);
    assert.equal(fired(alerts, 'fileless-exec').length, 1);
  });

  /** python: /bin/true copied into a memfd (fd left open across exec), then execv of the loader on a path to
   *  it ("FD" replaced by the fd number). mmap events come on the bulk ring and can be delivered after the
   *  exit: the pid's events are judged once its executable mapping (or 500 ms) has passed */
  const memfdLoader = async (loader: string, path: string, opts: { stdin?: boolean; cwd?: string } = {}) => {
    const r = await run('/usr/bin/python3', ['-c', [
      'import os, sys',
      "fd = os.memfd_create('payload', 0)",
      "os.write(fd, open('/bin/true', 'rb').read())",
      opts.stdin ? 'os.dup2(fd, 0); os.lseek(0, 0, 0)' : '',
      opts.cwd ? `os.chdir(${JSON.stringify(opts.cwd)})` : '',
      `os.execv(${JSON.stringify(loader)}, ['ld.so', ${JSON.stringify(path)}.replace('FD', str(fd))])`,
    ].join('\n')]);
    return { ...r, alerts: await settled(r.exec.pid) };
  };
  async function settled(pid: number): Promise<AlertOut[]> {
    for (let i = 0; i < 10 && !events.some((e) => e.pid === pid && e.type === 'mmap'); i++) await new Promise((res) => setTimeout(res, 50));
    return alerts(events.filter((e) => e.pid === pid));
  }
  const LOADER_RULES = ['fileless-exec', 'fileless-loader-mapping', 'executable-shmem-mapping'];
  const loaderAlerts = (alerts: AlertOut[]) => alerts.filter((a) => LOADER_RULES.includes(a.rule)).map((a) => a.rule).sort();

  test('ld.so /proc/self/fd/N of a memfd: ldso.program names the fd, ld.so maps the memfd: fileless-exec, fileless-loader-mapping, executable-shmem-mapping', async () => {
    const a = await memfdLoader(LDSO, '/proc/self/fd/FD');
    assert.equal(a.status, 0, 'the payload ran');
    assert.match(a.exec.ldso?.program ?? '', /^\/proc\/self\/fd\/\d+$/);
    assert.equal(a.exec.exe.memfd, false, 'the exe is ld.so on disk');
    assert.deepEqual(loaderAlerts(a.alerts), ['executable-shmem-mapping', 'fileless-exec', 'fileless-loader-mapping']);
    // /dev/fd/N and /dev/stdin on the memfd: the same
    const b = await memfdLoader(LDSO, '/dev/fd/FD');
    assert.deepEqual(loaderAlerts(b.alerts), ['executable-shmem-mapping', 'fileless-exec', 'fileless-loader-mapping']);
    const c = await memfdLoader(LDSO, '/dev/stdin', { stdin: true });
    assert.equal(c.exec.ldso?.program, '/dev/stdin');
    assert.deepEqual(loaderAlerts(c.alerts), ['executable-shmem-mapping', 'fileless-exec', 'fileless-loader-mapping']);
  });

  test('the loader on a path that does not look like an fd (relative, from /proc/self/fd), and a renamed copy of ld.so: the mapping rules still fire', async () => {
    const rel = await memfdLoader(LDSO, './FD', { cwd: '/proc/self/fd' });
    assert.equal(rel.status, 0);
    assert.match(rel.exec.ldso?.program ?? '', /^\.\/\d+$/);
    assert.deepEqual(loaderAlerts(rel.alerts), ['executable-shmem-mapping', 'fileless-loader-mapping']);
    const copy = join(dir, 'loader-copy');
    copyFileSync(LDSO, copy);
    chmodSync(copy, 0o755);
    const ren = await memfdLoader(copy, '/proc/self/fd/FD');
    assert.equal(ren.status, 0);
    assert.ok(fired(ren.alerts, 'executable-shmem-mapping').length >= 1, `renamed loader: ${loaderAlerts(ren.alerts)}`);
  });

  test('negatives: ld.so /bin/true, python itself: no loader alert', async () => {
    const a = await run(LDSO, ['/bin/true']);
    assert.deepEqual(loaderAlerts(await settled(a.exec.pid)), []);
    const p = await run('/usr/bin/python3', ['-c', 'import json, ssl, ctypes']);
    assert.deepEqual(loaderAlerts(await settled(p.exec.pid)), []);
  });

  test('negatives: /bin/true and a symlink to it run from disk, no fileless alert', async () => {
    const a = await run('/bin/true', []);
    assert.equal(a.exec.exe.memfd, false);
    assert.equal(a.exec.exe.deleted, false);
    assert.ok((a.exec.exe.nlink ?? 0) >= 1);
    assert.ok(a.exec.exe.fs && a.exec.exe.fs.length > 0);
    assert.deepEqual(fired(a.alerts, 'fileless-exec'), []);
    const link = join(dir, 'true-link');
    symlinkSync('/bin/true', link);
    const b = await run(link, []);
    assert.equal(b.exec.exe.path, a.exec.exe.path, 'the exe is the file the link resolves to');
    assert.deepEqual(fired(b.alerts, 'fileless-exec'), []);
  });

  test('an overlayfs mount (containers): a file run from it is not deleted, its fs is overlay, no alert', async (t) => {
    const o = join(dir, 'ovl');
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(o, d), { recursive: true });
    copyFileSync('/bin/true', join(o, 'lower', 'true'));
    chmodSync(join(o, 'lower', 'true'), 0o755);
    const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${o}/lower,upperdir=${o}/upper,workdir=${o}/work`, join(o, 'merged')], { encoding: 'utf8' });
    if (m.status !== 0) return t.skip(`no overlay mount here: ${m.stderr}`);
    try {
      const { exec, alerts } = await run(join(o, 'merged', 'true'), []);
      assert.equal(exec.exe.fs, 'overlay');
      assert.equal(exec.exe.deleted, false);
      assert.equal(exec.exe.nlink, 1);
      assert.equal(exec.exe.path, join(o, 'merged', 'true'));
      assert.deepEqual(fired(alerts, 'fileless-exec'), []);
    } finally {
      spawnSync('umount', [join(o, 'merged')]);
    }
  });

  test('setuid bit: su is reported setuid, true is not', async () => {
    const su = await run('/bin/su', ['--help']);
    assert.equal(su.exec.exe.setuid, true);
    const t = await run('/bin/true', []);
    assert.equal(t.exec.exe.setuid, false);
  });

  // ---- loader variables ----

  /** exec /bin/true with exactly these environment strings (duplicates, strings without '=') */
  const withEnv = (env: string[], prog = '/bin/true') => run(fx, ['execve', prog, '1', prog, ...env]);

  test('LD_PRELOAD twice (allowlisted, then evil): the last is reported, as ld.so uses it; duplicate flagged; alerts', async () => {
    const so = join(dir, 'evil.so');
    const { exec, alerts } = await withEnv([`LD_PRELOAD=${STDBUF_SO}`, `LD_PRELOAD=${so}`]);
    assert.equal(exec.env?.LD_PRELOAD, so);
    assert.deepEqual(exec.env_dup, ['LD_PRELOAD']);
    assert.deepEqual(exec.env_all?.LD_PRELOAD, [STDBUF_SO, so]);
    const p = fired(alerts, 'ld-preload-at-exec');
    assert.equal(p.length, 1);
    assert.match(p[0].message, /evil\.so/);
    assert.equal(fired(alerts, 'loader-env-duplicated').length, 1);
  });

  test('twenty watched variables before LD_PRELOAD: no slots to fill, LD_PRELOAD is reported', async () => {
    const env = Array.from({ length: 20 }, (_, i) => `LD_FILLER_${i}=x`);
    env.push('GCONV_PATH_NOT=1', 'PYTHONPATH=/opt/a', 'NODE_OPTIONS=--max-old-space-size=64', `LD_PRELOAD=${join(dir, 'evil.so')}`);
    const { exec, alerts } = await withEnv(env);
    assert.equal(exec.env?.LD_PRELOAD, join(dir, 'evil.so'));
    assert.equal(exec.env?.LD_FILLER_19, 'x');
    assert.equal(fired(alerts, 'ld-preload-at-exec').length, 1);
  });

  test('LD_LIBRARY_PATH of 200 characters then :/tmp: the whole value, the rule fires', async () => {
    const v = '/opt/' + 'a'.repeat(200) + ':/tmp';
    const { exec, alerts } = await withEnv([`LD_LIBRARY_PATH=${v}`]);
    assert.equal(exec.env?.LD_LIBRARY_PATH, v);
    assert.equal(fired(alerts, 'ld-library-path-world-writable').length, 1);
  });

  test('a watched value over the 4 KiB bound: kept cut, env_truncated, the alert', async () => {
    const { exec, alerts } = await withEnv([`LD_LIBRARY_PATH=/opt/${'b'.repeat(5000)}:/tmp`]);
    assert.equal(exec.env_truncated, true);
    assert.ok(exec.env?.LD_LIBRARY_PATH?.startsWith('/opt/bbbb'));
    assert.equal(fired(alerts, 'env-truncated-at-exec').length, 1);
  });

  test('2000 environment strings before LD_PRELOAD: recorded (the old walk stopped at 1024)', async () => {
    const env = Array.from({ length: 2000 }, (_, i) => `F${i}=1`);
    env.push(`LD_PRELOAD=${join(dir, 'evil.so')}`);
    const { exec } = await withEnv(env);
    assert.equal(exec.env?.LD_PRELOAD, join(dir, 'evil.so'));
    assert.equal(exec.env_truncated, undefined);
  });

  test('20000 environment strings before LD_PRELOAD: past the scan bound, env_truncated and its alert', async () => {
    const env = Array.from({ length: 20000 }, () => 'F=1');
    env.push(`LD_PRELOAD=${join(dir, 'evil.so')}`);
    const { exec, alerts } = await withEnv(env);
    assert.equal(exec.env_truncated, true);
    assert.equal(fired(alerts, 'env-truncated-at-exec').length, 1);
  });

  test('a long string hiding "LD_PRELOAD=" at the scratch boundary, and a bare name without "=": neither is a variable', async () => {
    const fake = 'X=' + 'a'.repeat(4093) + `LD_PRELOAD=${join(dir, 'fake.so')}`;
    const { exec, alerts } = await withEnv([fake, 'LD_AUDIT', 'KRSI_WATCH_ME=yes']);
    assert.equal(exec.env?.LD_PRELOAD, undefined, 'the rest of a long string is not read as a new one');
    assert.equal(exec.env?.LD_AUDIT, undefined, 'no "=": ld.so ignores it');
    assert.equal(exec.env?.KRSI_WATCH_ME, 'yes', '--watch-env names still reported');
    assert.deepEqual(envRules(alerts), []);
  });

  test('ld.so --preload with argv[0] padded past 512 bytes: the option is read from argv, the rule fires; --audit and --library-path too', async () => {
    const pad = 'A'.repeat(600);
    const so = join(dir, 'evil.so');
    const a = await run(fx, ['execve', LDSO, '4', pad, '--preload', so, '/bin/true']);
    assert.equal(a.exec.argv_truncated, true);
    assert.equal(a.exec.ldso?.preload, so);
    assert.equal(a.exec.ldso?.program, '/bin/true');
    assert.equal(fired(a.alerts, 'ldso-injection-options').length, 1);
    const b = await run(fx, ['execve', LDSO, '6', pad, '--audit', so, '--library-path', '/tmp', '/bin/true']);
    assert.equal(b.exec.ldso?.audit, so);
    assert.equal(b.exec.ldso?.library_path, '/tmp');
    assert.equal(fired(b.alerts, 'ldso-injection-options').length, 1);
    assert.equal(fired(b.alerts, 'ld-library-path-world-writable').length, 1);
  });

  test('a renamed copy of the loader (no ld-* name): recognised by having no interpreter, --preload still detected', async () => {
    const copy = join(dir, 'helper-tool');
    copyFileSync(LDSO, copy);
    chmodSync(copy, 0o755);
    const { exec, alerts } = await run(copy, ['--preload', join(dir, 'evil.so'), '/bin/true']);
    assert.equal(exec.ldso?.preload, join(dir, 'evil.so'));
    assert.equal(fired(alerts, 'ldso-injection-options').length, 1);
  });

  test('ld.so with an allowlisted --preload, and ld.so running a program plainly: no alert', async () => {
    const a = await run(LDSO, ['--preload', STDBUF_SO, '/bin/true']);
    assert.equal(a.exec.ldso?.preload, STDBUF_SO);
    assert.deepEqual(envRules(a.alerts), []);
    const b = await run(LDSO, ['/bin/true']);
    assert.deepEqual(b.exec.ldso, { program: '/bin/true' });
    assert.deepEqual(envRules(b.alerts), []);
  });

  test('GLIBC_TUNABLES shaped like CVE-2023-4911, GLIBC_TUNABLES on setuid su, GCONV_PATH, NODE_OPTIONS=--require: each alerts', async () => {
    const lt = await withEnv(['GLIBC_TUNABLES=glibc.malloc.mxfast=glibc.malloc.mxfast=A']);
    assert.equal(fired(lt.alerts, 'glibc-tunables-exploit').length, 1);
    const su = await run(fx, ['execve', '/bin/su', '2', 'su', '--help', 'GLIBC_TUNABLES=glibc.malloc.arena_max=1']);
    assert.equal(fired(su.alerts, 'glibc-tunables-exploit').length, 1);
    const gc = await withEnv(['GCONV_PATH=.']);
    assert.equal(fired(gc.alerts, 'gconv-path-at-exec').length, 1);
    const no = await withEnv([`NODE_OPTIONS=--require ${join(dir, 'x.js')}`]);
    assert.equal(fired(no.alerts, 'interpreter-injection-env').length, 1);
    const py = await withEnv(['PYTHONPATH=/tmp/.m', 'BASH_ENV=/tmp/.rc']);
    assert.equal(fired(py.alerts, 'interpreter-path-world-writable').length, 1);
    assert.equal(fired(py.alerts, 'interpreter-injection-env').length, 1);
  });

  test('negatives: stdbuf -oL true (allowlisted preload), ordinary environments, node and java with tuning: no alert', async () => {
    const sb = await run('/usr/bin/stdbuf', ['-oL', '/bin/true']);
    assert.equal(sb.exec.env?.LD_PRELOAD, STDBUF_SO);
    assert.deepEqual(envRules(sb.alerts), []);
    const ordinary = { PATH: '/usr/bin:/bin', HOME: '/root', LANG: 'C.UTF-8', TERM: 'xterm', PYTHONPATH: '/opt/app', GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' };
    const t = await run('/bin/true', [], ordinary);
    assert.deepEqual(envRules(t.alerts), []);
    const n = await run('/usr/bin/node', ['-e', '0'], { ...ordinary, NODE_OPTIONS: '--max-old-space-size=256' });
    assert.deepEqual(envRules(n.alerts), []);
    const j = await run('/usr/bin/java', ['-version'], { ...ordinary, JAVA_TOOL_OPTIONS: '-Xmx64m' });
    assert.deepEqual(envRules(j.alerts), []);
  });
});
