// The memory area of the evasion VM run (issue 11, item 2): executable memory on the effective protection,
// refused by krsi_file_mprotect, krsi_mmap_file and krsi_shm_shmat. A process with an mprotect_exec
// verdict cannot get executable memory by any door (mmap RWX, mprotect RX, READ_IMPLIES_EXEC + mprotect RW,
// an executable file mapping, pkey_mprotect, shmat SHM_EXEC); the in-kernel counter counts W->X flips and
// then refuses mmaps too; a process without a verdict, a JIT-like pattern and real node (and java when it
// starts in time under TCG) are never refused with the bundled rules' kernel config (mprotect_limit 100).
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadEnforcement, unloadEnforcement } from '../../../../enforcers/programs.ts';
import { KRSI_OP, encodeTgidKey, encodeVerdict, type DecodedDenied } from '../../../../enforcers/maps.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(dir: string): Promise<Record<string, unknown>> {
  const D = '/mnt/krsi-memory';
  mkdirSync(D, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', D]);
  const mem = `${D}/memory`;
  copyFileSync(join(dir, 'memory'), mem);
  chmodSync(mem, 0o755);
  const obs: Record<string, unknown> = {};
  const h = await loadEnforcement({ selfPid: process.pid, config: { enforce: 1, mprotect_limit: 100, module_mode: 0 } });
  const denied: DecodedDenied[] = [];
  const stopDenied = h.onDenied((ev) => denied.push(ev));
  const deniedOf = (pid: number) => denied.filter((d) => d.pid === pid).map((d) => `${d.op}/${d.reason}`);
  try {
    /** memory.c MODE under an mprotect_exec verdict set on its pid before it acts (or none) */
    const withVerdict = async (args: string[], verdict: boolean) => {
      const c = spawn(mem, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { KRSI_WAIT: '1' } });
      await new Promise<void>((res, rej) => { c.once('spawn', () => res()); c.once('error', rej); });
      let out = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
      const code = new Promise<number | null>((res) => c.once('close', (n) => res(n)));
      await sleep(50);
      if (verdict) h.maps.deny_tgid.update(encodeTgidKey(c.pid!), encodeVerdict({ expires: 0, ops: KRSI_OP.MPROTECT_EXEC, rule_id: 7 }));
      c.stdin.end('go\n');
      const r = { code: await code, out: out.trim(), pid: c.pid! };
      await sleep(50);
      return { ...r, denied: deniedOf(r.pid) };
    };
    const modes: [string, string[]][] = [
      ['rwxMmap', ['rwx-mmap']], ['rwRx', ['rw-rx']], ['mmapRwRx', ['mmap-rw-rx']], ['rie', ['rie']], ['rxFile', ['rx-file', '/bin/true']],
      ['rxAnon', ['rx-anon']], ['pkey', ['pkey']], ['shm', ['shm']],
    ];
    const verdict: Record<string, unknown> = {};
    const none: Record<string, unknown> = {};
    for (const [k, args] of modes) verdict[k] = await withVerdict(args, true);
    for (const [k, args] of modes) none[k] = await withVerdict(args, false);
    // an exec under the verdict: the kernel maps the new image executable through mmap_file
    verdict.exec = await withVerdict(['exec', '/bin/true'], true);
    none.exec = await withVerdict(['exec', '/bin/true'], false);
    obs.verdict = verdict;
    obs.none = none;
    // the counter: 101 flips with a limit of 100, then an executable mmap
    obs.counter = await withVerdict(['counter', '101'], false);
    obs.counterUnder = await withVerdict(['counter', '100'], false);
    // over the counter, then exec: the counter starts again with the new image (which maps R|X anonymous)
    obs.counterExec = await withVerdict(['counter-exec', '101', mem, 'rx-anon'], false);
    // what a JIT does: RW/R mprotects and W+X mmaps, no flip
    obs.jitlike = await withVerdict(['jitlike', '300'], false);
    // real JITs under the bundled rules' kernel config
    const timed = (cmd: string, args: string[], ms: number) => {
      const t0 = Date.now();
      const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: ms });
      return { code: r.status, signal: r.signal, ms: Date.now() - t0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().slice(-400), pid: r.pid ?? 0 };
    };
    const node = timed(process.execPath, [join(dir, 'hot.js')], 60_000);
    await sleep(100);
    obs.node = { ...node, denied: deniedOf(node.pid) };
    if (existsSync(join(dir, 'Hot.class')) && process.env.KRSI_VM_JAVA !== '0') {
      const java = timed('java', ['-Xshare:off', '-XX:TieredStopAtLevel=1', '-cp', dir, 'Hot'], 60_000);
      await sleep(100);
      obs.java = { ...java, denied: deniedOf(java.pid) };
    }
    obs.counts = Object.fromEntries([...denied.reduce((m, d) => m.set(`${d.op}/${d.reason}`, (m.get(`${d.op}/${d.reason}`) ?? 0) + 1), new Map<string, number>())]);
  } finally {
    await stopDenied();
    h.close();
    unloadEnforcement();
    spawnSync('umount', [D]);
  }
  return obs;
}
