// Runs inside the VM (test/vm/protect.test.ts boots it once): starts `krsi run --mode enforce` (self-protection
// on by default), attacks it as another root process would, checks the negatives, then does the same against
// `krsi run --no-self-protect`; writes what it observed to <results>/results.json, the host test asserts.
// Usage: node protect-cases.js CLI_BUNDLE PROTECTHELPER RESULTS_DIR
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { loadEnforcement, unloadEnforcement } from '../../../enforcers/programs.ts';

const [cli, helperSrc, results] = process.argv.slice(2);
const D = '/mnt/protect';
const PIN = '/sys/fs/bpf/krsi/enforce';
const r: Record<string, unknown> = { steps: [] as string[], kernel: release() };
const step = (s: string) => { (r.steps as string[]).push(`${new Date().toISOString()} ${s}`); process.stderr.write(`protect: ${s}\n`); };
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

interface Cmd { code: number | null; out: string; pid: number }
function sh(cmd: string, args: string[]): Cmd {
  const c = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: c.status, out: `${c.stdout ?? ''}${c.stderr ?? ''}${c.error ? String(c.error) : ''}`.trim().slice(-600), pid: c.pid ?? 0 };
}

interface Krsi { p: ChildProcess; out: Record<string, unknown>[]; err: () => string; exit: Promise<number | null> }
function startKrsi(extra: string[]): Krsi {
  const p = spawn(process.execPath, [cli, 'run', '--rules', join(D, 'rules.json'), '--mode', 'enforce', '--format', 'json', '--state', join(D, 'state'),
    '--watch-env', 'KRSI_PROTECT_CANARY', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Record<string, unknown>[] = [];
  let buf = '', err = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try { out.push(JSON.parse(line)); } catch { err += `stdout: ${line}\n`; }
    }
  });
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<number | null>((res) => p.once('exit', (c) => res(c)));
  return { p, out, err: () => err, exit };
}
async function until<T>(what: string, f: () => T | undefined, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(250);
  }
}
async function ready(k: Krsi): Promise<void> {
  let n = 0;
  await until('krsi run to see a canary exec', () => {
    if (k.p.exitCode !== null) throw new Error(`krsi run exited ${k.p.exitCode}: ${k.err().slice(-3000)}`);
    if (k.out.some((o) => o.kind === 'alert' && o.rule === 'protect-canary')) return true;
    spawnSync('/bin/true', [], { env: { ...process.env, KRSI_PROTECT_CANARY: String(++n) } });
    return undefined;
  }, 300_000);
}
const tampers = (k: Krsi) => k.out.filter((o) => o.kind === 'denied' && o.op === 'tamper');
/** krsi's link ids, from /proc/PID/fdinfo (read mode: allowed) */
function linkIds(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
    try { const m = /^link_id:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')); if (m) ids.push(Number(m[1])); } catch { /* closed */ }
  }
  return ids;
}
const verdicts = (...a: string[]) => sh(process.execPath, [cli, 'verdicts', ...a, '--state', join(D, 'state')]);
const execCode = (f: string) => { const c = spawnSync(f, [], { encoding: 'utf8' }); return c.error ? String((c.error as NodeJS.ErrnoException).code) : `status ${c.status}`; };
// a key/value for a pid that does not exist (the test never denies anything it did not make)
const TGID_KEY = ['key', '0x3f', '0x42', '0x0f', '0x00'];
const VALUE = ['value', ...Array.from({ length: 16 }, (_, i) => (i === 8 ? '1' : '0'))];

mkdirSync(D, { recursive: true });
spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', D]);
copyFileSync(helperSrc, join(D, 'protecthelper'));
chmodSync(join(D, 'protecthelper'), 0o755);
copyFileSync('/bin/true', join(D, 'denyme'));
chmodSync(join(D, 'denyme'), 0o755);
copyFileSync('/usr/bin/kill', join(D, 'allowed-kill'));
chmodSync(join(D, 'allowed-kill'), 0o755);
writeFileSync(join(D, 'rules.json'), JSON.stringify({ rules: [{
  id: 'protect-canary', description: 'readiness probe', tags: ['test'], severity: 'info', mode: 'monitor',
  match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'env', path: '$.KRSI_PROTECT_CANARY', operator: 'exists', value: true }] },
  actions: [{ type: 'alert', message: 'canary' }],
}] }));

let k1: Krsi | undefined, k2: Krsi | undefined;
const sleeper = spawn('/bin/sleep', ['600']);
let holder: ChildProcess | undefined;
try {
  step('enforcement pinned while no krsi runs; a process takes an fd on its config map and keeps it');
  (await loadEnforcement({ selfPid: 0 })).close();
  holder = spawn(join(D, 'protecthelper'), ['hold', `${PIN}/config`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let held = '';
  holder.stdout!.setEncoding('utf8').on('data', (d: string) => (held += d));
  await until('the holder\'s fd', () => (held.includes('\n') ? true : undefined), 30_000);
  r.held = { pid: holder.pid, out: held.trim() };

  step('krsi run #1: enforce, self-protection on (default)');
  k1 = startKrsi(['--allow-stop-from', join(D, 'allowed-kill'), '--metrics', '127.0.0.1:0']);
  const pid1 = k1.p.pid!;
  r.pid1 = pid1;
  await ready(k1);
  r.links1 = linkIds(pid1);
  step('attacks');
  const a: Record<string, unknown> = {};
  a.mapUpdate = sh('bpftool', ['map', 'update', 'pinned', `${PIN}/deny_tgid`, ...TGID_KEY, ...VALUE]);
  a.mapDelete = sh('bpftool', ['map', 'delete', 'pinned', `${PIN}/deny_inode`, 'key', ...Array(16).fill('0')]);
  a.mapDump = sh('bpftool', ['map', 'dump', 'pinned', `${PIN}/config`]);
  a.linkDetachPinned = sh('bpftool', ['link', 'detach', 'pinned', `${PIN}/link_krsi_bprm_check`]);
  a.linkDetachId = sh('bpftool', ['link', 'detach', 'id', String((r.links1 as number[])[0] ?? 0)]);
  a.rmLinkPin = sh('rm', ['-f', `${PIN}/link_krsi_bprm_check`]);
  a.mvLinkPin = sh('mv', [`${PIN}/link_krsi_file_mprotect`, `${PIN}/moved`]);
  a.mvMapPin = sh('mv', [`${PIN}/deny_tgid`, '/sys/fs/bpf/stolen']);
  a.rmdirPinDir = sh('rmdir', [PIN]);
  a.rmControlSock = sh('rm', ['-f', '/run/krsi/control.sock']);
  a.umountBpffs = sh('umount', ['/sys/fs/bpf']);
  a.ptrace = sh(join(D, 'protecthelper'), [String(pid1)]);
  // the fd taken before krsi started still writes the map (a limit), but cannot switch protection off
  holder.stdin!.write('go\n');
  await until('the holder\'s write', () => (held.includes('update=') ? true : undefined), 30_000);
  (r.held as Record<string, unknown>).out = held.trim();
  a.mapDumpAfterStaleWrite = sh('bpftool', ['map', 'dump', 'pinned', `${PIN}/config`]);
  a.pinsAfter = existsSync(`${PIN}/link_krsi_bprm_check`) && existsSync(`${PIN}/deny_tgid`) && existsSync('/run/krsi/control.sock');
  a.stop = sh('/usr/bin/kill', ['-STOP', String(pid1)]);
  sh('/usr/bin/kill', ['-CONT', String(pid1)]);
  a.allowedStop = sh(join(D, 'allowed-kill'), ['-STOP', String(pid1)]);
  sh('/usr/bin/kill', ['-CONT', String(pid1)]);
  r.attacks = a;

  step('negatives');
  const n: Record<string, unknown> = {};
  n.otherMapCreate = sh('bpftool', ['map', 'create', '/sys/fs/bpf/other', 'type', 'hash', 'key', '4', 'value', '4', 'entries', '4', 'name', 'other']);
  n.otherMapUpdate = sh('bpftool', ['map', 'update', 'pinned', '/sys/fs/bpf/other', 'key', '1', '0', '0', '0', 'value', '2', '0', '0', '0']);
  n.otherMapDump = sh('bpftool', ['map', 'dump', 'pinned', '/sys/fs/bpf/other']);
  n.otherMapRm = sh('rm', ['/sys/fs/bpf/other']);
  n.progShow = sh('bpftool', ['prog', 'show']);
  n.ptraceOther = sh(join(D, 'protecthelper'), [String(sleeper.pid)]);
  writeFileSync(join(D, 'scratch'), 'x');
  n.rmOther = sh('rm', [join(D, 'scratch')]);
  n.execBefore = execCode(join(D, 'denyme'));
  n.add = verdicts('add', '--op', 'exec', '--inode', join(D, 'denyme'), '--ttl', '5m', '--rule', 'protect-test');
  n.execDenied = execCode(join(D, 'denyme'));
  n.list = verdicts('list', '--format', 'json');
  n.rm = verdicts('rm', (n.add as Cmd).out.split('\n').pop()!.trim());
  n.execAfterRm = execCode(join(D, 'denyme'));
  r.negatives = n;
  await sleep(3000); // the denied events reach krsi's output
  r.tampers1 = tampers(k1);
  const url = /metrics on (http:\/\/\S+)/.exec(k1.err())?.[1];
  r.metrics = url ? (await (await fetch(url)).text()).split('\n').filter((l) => l.startsWith('krsi_tamper_total')) : `no metrics URL in: ${k1.err().slice(0, 2000)}`;
  r.denied1 = k1.out.filter((o) => o.kind === 'denied' && o.op !== 'tamper');
  step('stop krsi #1');
  k1.p.kill('SIGTERM');
  r.exit1 = await k1.exit;
  r.stderr1 = k1.err().slice(-4000);
  r.holderWarning = k1.err().split('\n').filter((l) => l.includes('opened before self-protection')).join('\n');
  r.sockGone = !existsSync('/run/krsi/control.sock');

  step('krsi run #2: --no-self-protect');
  k2 = startKrsi(['--no-self-protect']);
  const pid2 = k2.p.pid!;
  r.pid2 = pid2;
  await ready(k2);
  const o: Record<string, unknown> = {};
  o.mapUpdate = sh('bpftool', ['map', 'update', 'pinned', `${PIN}/deny_tgid`, ...TGID_KEY, ...VALUE]);
  o.mapDelete = sh('bpftool', ['map', 'delete', 'pinned', `${PIN}/deny_tgid`, ...TGID_KEY]);
  o.mapDump = sh('bpftool', ['map', 'dump', 'pinned', `${PIN}/config`]);
  o.mvLinkPin = sh('mv', [`${PIN}/link_krsi_file_mprotect`, `${PIN}/moved`]);
  o.mvBack = sh('mv', [`${PIN}/moved`, `${PIN}/link_krsi_file_mprotect`]);
  o.ptrace = sh(join(D, 'protecthelper'), [String(pid2)]);
  o.add = verdicts('add', '--op', 'exec', '--inode', join(D, 'denyme'), '--ttl', '5m', '--rule', 'protect-test');
  o.execDenied = execCode(join(D, 'denyme'));
  o.clear = verdicts('clear');
  r.off = o;
  await sleep(2000);
  r.tampers2 = tampers(k2);
  k2.p.kill('SIGTERM');
  r.exit2 = await k2.exit;
  r.stderr2 = k2.err().slice(-3000);
  step('done');
} catch (e) {
  r.error = (e as Error).stack ?? String(e);
  r.stderr1 ??= k1?.err().slice(-4000);
  r.stderr2 ??= k2?.err().slice(-4000);
} finally {
  sleeper.kill('SIGKILL');
  holder?.kill('SIGKILL');
  for (const k of [k1, k2]) if (k && k.p.exitCode === null) { k.p.kill('SIGKILL'); await k.exit; }
  try { unloadEnforcement(); } catch (e) { r.unloadError = String(e); }
  writeFileSync(join(results, 'results.json'), JSON.stringify(r, null, 1));
}
