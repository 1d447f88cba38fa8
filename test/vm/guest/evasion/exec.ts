// Guest side of the exec evasion area (test/vm/evasion/exec.ts asserts): the opt-in in-kernel deny of
// fileless execution on BPF-LSM. Off by default; on through the Enforcer from the bundled rule's kernel
// block under --mode enforce (config.flags DENY_FILELESS): a memfd (fexecve, execveat) and a file unlinked
// after open get EPERM and a denied record (reason FILELESS); a file on disk and a path unlinked while a
// hard link remains still run; monitor mode records and allows. Runs the static fixture
// test/live/fixtures/exec-evasion.c (built by the host into dir).
import { spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadEnforcement, unloadEnforcement } from '../../../../enforcers/programs.ts';
import { Enforcer, PinnedMapWriter, type VerdictMaps } from '../../../../enforcers/index.ts';
import { VerdictStore } from '../../../../enforcers/store.ts';
import type { DecodedDenied } from '../../../../enforcers/maps.ts';
import { loadRuleDirs, BUNDLED_RULES_DIR } from '../../../../engine/rules/load.ts';
import type { CompiledRuleSet } from '../../../../engine/rules/types.ts';
import { startSignals } from '../../../../signals/live.ts';
import type { ExecEvent } from '../../../../signals/events.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(dir: string): Promise<Record<string, unknown>> {
  const obs: Record<string, unknown> = {};
  // the fixture and the files it runs on a tmpfs of our own (real inodes, not the overlay's)
  const W = '/mnt/krsi-exec';
  mkdirSync(W, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', W]);
  const fx = join(W, 'exec-evasion');
  copyFileSync(join(dir, 'exec-evasion'), fx);
  chmodSync(fx, 0o755);
  copyFileSync('/bin/true', join(W, 'true'));
  chmodSync(join(W, 'true'), 0o755);
  writeFileSync(join(W, 'script.sh'), '#!/bin/sh\nexit 0\n');
  // the interpreter of a script run from an fd opens /dev/fd/N: the minimal guest may lack the link
  if (!existsSync('/dev/fd')) symlinkSync('/proc/self/fd', '/dev/fd');
  chmodSync(join(W, 'script.sh'), 0o755);

  const ex = (args: string[]) => {
    const r = spawnSync(fx, args, { encoding: 'utf8' });
    const m = /EXEC_ERRNO (\d+)/.exec(r.stdout ?? '');
    return { code: r.status, errno: m ? Number(m[1]) : 0, pid: r.pid ?? 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
  };
  const techniques = () => ({
    memfd: ex(['memfd', 'payload', '/bin/true']),
    memfdAt: ex(['memfd-at', 'payload-at', '/bin/true']),
    memfdScript: ex(['memfd', 'script', join(W, 'script.sh')]),
    unlinked: ex(['unlinked', join(W, `gone-${Date.now()}`), '/bin/true']),
    unlinkedOverlay: ex(['unlinked', `/root/gone-${Date.now()}`, '/bin/true']),
    hardlinked: ex(['hardlinked', join(W, `linked-${Date.now()}`), '/bin/true']),
    onDisk: ex(['execve', join(W, 'true'), '1', 'true']),
    system: ex(['execve', '/bin/true', '1', 'true']),
  });

  // the signal side on this kernel: the exec program loads (verifier) and reports the facts
  {
    const live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
    const execs: ExecEvent[] = [];
    const sub = live.events$.subscribe((e) => void (e.type === 'exec' && execs.push(e)));
    try {
      const memfd = ex(['memfd', 'sig', '/bin/true']);
      const script = ex(['memfd', 'sigscript', join(W, 'script.sh')]);
      const dup = ex(['execve', join(W, 'true'), '1', 'true', 'LD_PRELOAD=/usr/libexec/coreutils/libstdbuf.so', 'LD_PRELOAD=/tmp/evil.so']);
      const ldso = ex(['execve', '/lib64/ld-linux-x86-64.so.2', '4', 'A'.repeat(600), '--preload', '/tmp/evil.so', '/bin/true']);
      let deep = W;
      for (let i = 0; i < 30; i++) deep = join(deep, `level_${i}_abcdef`);
      mkdirSync(deep, { recursive: true });
      copyFileSync('/bin/true', join(deep, 'true'));
      chmodSync(join(deep, 'true'), 0o755);
      const deepRun = ex(['execve', join(deep, 'true'), '1', 'true']);
      obs.deepPath = join(deep, 'true');
      const fake = ex(['execve', join(W, 'true'), '1', 'true', 'X=' + 'a'.repeat(4093) + 'LD_PRELOAD=/tmp/fake.so', 'LD_AUDIT']);
      const many = ex(['execve', join(W, 'true'), '1', 'true', ...Array.from({ length: 2000 }, (_, i) => `F${i}=1`), 'LD_PRELOAD=/tmp/late.so']);
      const cut = ex(['execve', join(W, 'true'), '1', 'true', `LD_LIBRARY_PATH=/opt/${'b'.repeat(5000)}`]);
      await sleep(1000);
      const last = (pid: number) => execs.filter((e) => e.pid === pid).pop();
      obs.signals = { memfd: last(memfd.pid), script: last(script.pid), dup: last(dup.pid), ldso: last(ldso.pid), fake: last(fake.pid), many: last(many.pid), cut: last(cut.pid), deep: last(deepRun.pid) };
    } finally {
      sub.unsubscribe();
      await live.stop();
    }
  }

  const h = await loadEnforcement({ selfPid: process.pid, config: { enforce: 1, mprotect_limit: 0, module_mode: 0, flags: 0 } });
  const events: DecodedDenied[] = [];
  const stop = h.onDenied((ev) => events.push(ev));
  const deniedOf = async (pids: number[]) => {
    await sleep(300);
    return events.filter((e) => pids.includes(e.pid)).map((e) => ({ pid: e.pid, op: e.op, reason: e.reason, enforced: e.enforced, rule_id: e.rule_id, key: e.key }));
  };
  const pidsOf = (t: Record<string, { pid: number }>) => Object.values(t).map((x) => x.pid);
  try {
    // off: the default config
    obs.configBefore = h.config();
    const off = techniques();
    obs.off = { ...off, denied: await deniedOf(pidsOf(off)) };

    // the bundled rule, in its own mode (monitor): its kernel block configures nothing
    const all = await loadRuleDirs([BUNDLED_RULES_DIR]);
    const only: CompiledRuleSet = { ...all, rules: all.rules.filter((r) => r.id === 'fileless-exec') };
    const store = VerdictStore.open(mkdtempSync('/root/krsi-exec-state-'));
    const enf = new Enforcer(store, new PinnedMapWriter(h.maps as unknown as VerdictMaps, true, () => {}), { selfPid: process.pid });
    enf.configure(only);
    obs.ownModeFlags = h.config().flags;

    // --mode enforce: the kernel block sets config.flags
    enf.configure(only, 'enforce');
    obs.enforceConfig = h.config();
    const on = techniques();
    obs.enforce = { ...on, denied: await deniedOf(pidsOf(on)) };

    // monitor (config.enforce 0): recorded, allowed
    h.setConfig({ enforce: 0 });
    const mon = techniques();
    obs.monitor = { ...mon, denied: await deniedOf(pidsOf(mon)) };
    h.setConfig({ enforce: 1 });

    // the rule set without it: off again
    enf.configure({ ...all, rules: [] });
    obs.flagsAfter = h.config().flags;
    obs.after = { memfd: ex(['memfd', 'after', '/bin/true']) };
    await enf.close();
  } finally {
    await stop();
    h.close();
    unloadEnforcement();
    spawnSync('umount', [W]);
  }
  return obs;
}
