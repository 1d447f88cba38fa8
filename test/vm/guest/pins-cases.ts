// Runs inside the VM (test/vm/pins.test.ts boots it once): krsi's pins against an attacker on the host, and
// the exemption of a killed krsi. Writes what it observed to <results>/results.json; the host test asserts.
// Usage: node pins-cases.js CLI_BUNDLE RESULTS_DIR   (CLI_BUNDLE: cli/main.ts bundled, the real `krsi`)
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BpfMap } from '../../../bpf/libbpf.ts';
import { BUILD_MARK, loadEnforcement, unloadEnforcement } from '../../../enforcers/programs.ts';
import {
  CONFIG_KEY, ENFORCE_PIN_DIR, KRSI_OP, LINK_PINS, MAP_PINS, decodeConfig, encodeInodeKey, encodeTgidKey, encodeVerdict, kernelFileId, type DecodedDenied,
} from '../../../enforcers/maps.ts';

const [cli, resultsDir] = process.argv.slice(2);
const D = '/mnt/pins';
const obs: Record<string, unknown> = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const step = (s: string) => process.stderr.write(`pins: ${s}\n`);

mkdirSync(D, { recursive: true });
execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', D]);
copyFileSync('/bin/true', `${D}/denied-true`);
chmodSync(`${D}/denied-true`, 0o755);
const rules = join(D, 'rules.json');
writeFileSync(rules, JSON.stringify({
  rules: [{
    id: 'pins-canary', description: 'any exec', tags: ['test'], severity: 'info', mode: 'monitor',
    match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }] }, actions: [{ type: 'alert', message: 'exec' }],
  }],
}));
const denyKey = encodeInodeKey(kernelFileId(`${D}/denied-true`));
const execVerdict = encodeVerdict({ expires: 0, ops: KRSI_OP.EXEC, rule_id: 31 });

/** exec of the denied copy: 'EPERM' when refused, else its exit status */
function tryExec(): string {
  const r = spawnSync(`${D}/denied-true`);
  return r.error ? String((r.error as NodeJS.ErrnoException).code) : `status ${r.status}`;
}
function krsi(args: string[]): { code: number | null; err: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 240_000 });
  return { code: r.status, err: r.stderr.slice(-1500) };
}
/** the error a promise rejects with, as {message, exitCode}; 'loaded' when it resolved (the handle is closed) */
async function refusal(p: Promise<{ close(): void }>): Promise<unknown> {
  try {
    (await p).close();
    return 'loaded';
  } catch (e) {
    return { message: (e as Error).message, exitCode: (e as { exitCode?: number }).exitCode };
  }
}
function tgidNow(): number {
  try {
    const m = BpfMap.fromPinned(MAP_PINS.config);
    try {
      return decodeConfig(m.lookup(CONFIG_KEY)!).krsi_tgid;
    } finally {
      m.close();
    }
  } catch {
    return -1;
  }
}
const asNobody = (...cmd: string[]) => execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd]);
const reset = () => {
  try {
    unloadEnforcement();
  } catch {
    // a case left something unload does not expect (old code pinned into a symlink's target): rm below
  }
  rmSync('/sys/fs/bpf/krsi', { recursive: true, force: true });
  rmSync('/sys/fs/bpf/elsewhere', { recursive: true, force: true });
};
/** run one case; an exception is recorded as obs[name].error and the next case runs */
async function section(name: string, fn: () => Promise<void> | void): Promise<void> {
  step(name);
  try {
    await fn();
  } catch (e) {
    obs[name] = { ...(obs[name] as object), error: (e as Error).stack ?? String(e) };
  }
}

obs.bpffsMode = (statSync('/sys/fs/bpf').mode & 0o7777).toString(8);

// ---- a user who creates /sys/fs/bpf/krsi/enforce first: krsi run --mode enforce exits 3, pins nothing ----
await section('userDir', () => {
  asNobody('mkdir', '-p', ENFORCE_PIN_DIR);
  obs.userDir = { uid: statSync(ENFORCE_PIN_DIR).uid, run: krsi(['run', '--mode', 'enforce', '--rules', rules, '--duration', '2s']), pins: readdirSync(ENFORCE_PIN_DIR) };
});
reset();

// ---- a symlink in place of the pin directory, a world-writable one (root's): refused ----
await section('symlinkDir', async () => {
  mkdirSync('/sys/fs/bpf/krsi', { mode: 0o700 });
  asNobody('mkdir', '/sys/fs/bpf/elsewhere');
  symlinkSync('/sys/fs/bpf/elsewhere', ENFORCE_PIN_DIR);
  obs.symlinkDir = { refusal: await refusal(loadEnforcement({ selfPid: 0 })), targetPins: readdirSync('/sys/fs/bpf/elsewhere') };
});
reset();
await section('writableDir', async () => {
  mkdirSync(ENFORCE_PIN_DIR, { recursive: true });
  chmodSync(ENFORCE_PIN_DIR, 0o777);
  obs.writableDir = { refusal: await refusal(loadEnforcement({ selfPid: 0 })) };
});
reset();

// ---- fake pins (a root-only directory, but a stale or planted pin): never trusted ----
await section('fakeLink', async () => {
  (await loadEnforcement({ selfPid: 0 })).close();
  unlinkSync(LINK_PINS.krsi_bprm_check); // no one holds the link: its program detaches
  symlinkSync(LINK_PINS.krsi_exit, LINK_PINS.krsi_bprm_check);
  const h = await loadEnforcement({ selfPid: 0 });
  h.maps.deny_inode.update(denyKey, execVerdict);
  obs.fakeLink = { reused: h.reused, symlinkLeft: lstatSync(LINK_PINS.krsi_bprm_check).isSymbolicLink(), exec: tryExec() };
  h.maps.deny_inode.delete(denyKey);
  h.close();
});
reset();
await section('fakeMap', async () => {
  (await loadEnforcement({ selfPid: 0 })).close();
  unlinkSync(MAP_PINS.deny_inode); // an impostor with the same name and shape, used by no program
  execFileSync('bpftool', ['map', 'create', MAP_PINS.deny_inode, 'type', 'hash', 'key', '16', 'value', '16', 'entries', '65536', 'name', 'deny_inode']);
  const h = await loadEnforcement({ selfPid: 0 });
  h.maps.deny_inode.update(denyKey, execVerdict);
  obs.fakeMap = { reused: h.reused, exec: tryExec() };
  h.maps.deny_inode.delete(denyKey);
  h.close();
});
reset();

// ---- programs of another build (an older krsi's, without today's fixes) pass every check but are reloaded ----
await section('otherBuild', async () => {
  const h0 = await loadEnforcement({ selfPid: 0 });
  h0.close();
  const mark = readlinkSync(BUILD_MARK);
  const linkId = () => JSON.parse(execFileSync('bpftool', ['-j', 'link', 'show', 'pinned', LINK_PINS.krsi_exit], { encoding: 'utf8' })).id as number;
  const before = linkId();
  const same = await loadEnforcement({ selfPid: 0 }); // the same build: reused
  same.close();
  unlinkSync(BUILD_MARK);
  symlinkSync('enforce.o-0000000000000000', BUILD_MARK);
  const h = await loadEnforcement({ selfPid: 0 });
  h.close();
  obs.otherBuild = { sameReused: same.reused, reused: h.reused, markBefore: mark, markAfter: readlinkSync(BUILD_MARK), linkReplaced: linkId() !== before };
});
reset();

// ---- krsi run: a link pin unlinked while it runs does not detach; then SIGKILL ----
let P = 0;
await section('unlinkWhileRunning', async () => {
  // --no-self-protect: krsi's own re-pinning is what is tested here; self-protection would refuse the unlink
  // (and this process's map fd) first (test/vm/protect.test.ts)
  const k = spawn(process.execPath, [cli, 'run', '--mode', 'enforce', '--no-self-protect', '--rules', rules, '--format', 'json', '--state', join(D, 'state')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let kerr = '';
  k.stderr!.setEncoding('utf8').on('data', (d: string) => (kerr += d));
  const kexit = new Promise<number | null>((res) => k.once('exit', (c) => res(c)));
  P = k.pid!;
  try {
    for (const end = Date.now() + 240_000; tgidNow() !== P; await sleep(250)) {
      if (k.exitCode !== null || Date.now() > end) throw new Error(`krsi run never became ready (exit ${k.exitCode}): ${kerr.slice(-2000)}`);
    }
    await sleep(1000);
    step(`krsi run ready (pid ${P})`);
    const deny = BpfMap.fromPinned(MAP_PINS.deny_inode);
    deny.update(denyKey, execVerdict);
    const execBefore = tryExec();
    unlinkSync(LINK_PINS.krsi_bprm_check);
    const execAfterUnlink = tryExec();
    let repinned = false;
    for (const end = Date.now() + 15_000; !repinned && Date.now() < end; await sleep(250)) repinned = existsSync(LINK_PINS.krsi_bprm_check);
    const linkShow = spawnSync('bpftool', ['-j', 'link', 'show', 'pinned', LINK_PINS.krsi_bprm_check], { encoding: 'utf8' }).stdout;
    deny.delete(denyKey);
    deny.close();
    obs.unlinkWhileRunning = { execBefore, execAfterUnlink, repinned, linkShow };
  } finally {
    step('SIGKILL krsi run');
    k.kill('SIGKILL');
    await kexit;
    await sleep(200);
    const dump = spawnSync('bpftool', ['-j', 'map', 'dump', 'pinned', MAP_PINS.config], { encoding: 'utf8' }).stdout;
    obs.killed = { pid: P, configDump: dump, tgidAfter: tgidNow(), stderr: kerr.slice(-1500) };
  }
});

// ---- a process that gets the dead krsi's pid has no exemption: its verdict denies it ----
await section('pidReuse', async () => {
  const forkAt = (cmd: string) => spawnSync('sh', ['-c', `echo ${P - 1} > /proc/sys/kernel/ns_last_pid; ${cmd}`], { encoding: 'utf8' });
  const dry = forkAt('sh -c \'echo $$\'; :'); // not the last command: sh forks it (dash execs a last one in place)
  const h = await loadEnforcement({ selfPid: 0 });
  const events: DecodedDenied[] = [];
  const stop = h.onDenied((ev) => events.push(ev));
  h.maps.deny_tgid.update(encodeTgidKey(P), execVerdict);
  const reuse = forkAt(`${D}/denied-true; echo rc=$?`);
  await sleep(300);
  await stop();
  obs.pidReuse = {
    dryPid: Number(dry.stdout.trim()), out: (reuse.stdout + reuse.stderr).trim(), configTgid: h.config().krsi_tgid,
    events: events.map((e) => ({ pid: e.pid, op: e.op, reason: e.reason, rule_id: e.rule_id })),
  };
  h.close();
});
reset();
writeFileSync(join(resultsDir, 'results.json'), JSON.stringify(obs, null, 1));
