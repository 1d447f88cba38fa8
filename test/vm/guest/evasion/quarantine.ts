// Quarantine area of the evasion VM run (issue 11 items 9 and 10): in the guest, as root, on its BPF-LSM kernel.
//   tree      a quarantine covers a child forked before the verdict (krsi writes it to the descendants it
//             knows); the kernel's fork copy alone does not (shown: the same verdict without descendants)
//   kill      the kill op: the kernel kills at the next guarded operation; krsi's user-space kill at once;
//             a process already gone is not applied to
//   krsi      `krsi run` with the bundled chain rule: LD_PRELOAD exec -> fork -> the child's W+X: the child
//             is killed; the parent's W+X after a fork: both killed; no preload: nothing
//   doors     ld.so ./denied-copy and mmap/mprotect PROT_EXEC of a deny-listed file are refused; an
//             unrelated process and a non-denied binary through ld.so run
//   btrfs     a deny-listed binary on a btrfs subvolume (key from kernelFileId) is refused; a copy runs
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEnforcement, unloadEnforcement } from '../../../../enforcers/programs.ts';
import { KRSI_OP, encodeInodeKey, encodeTgidKey, encodeVerdict, kernelFileId, type DecodedDenied } from '../../../../enforcers/maps.ts';
import { Enforcer, PinnedMapWriter, type VerdictMaps } from '../../../../enforcers/index.ts';
import { VerdictStore, bootTimeNs } from '../../../../enforcers/store.ts';
import type { Verdict } from '../../../../engine/types.ts';

const CLI = fileURLToPath(new URL('../../../../bin/krsi.js', import.meta.url));
const RULES = fileURLToPath(new URL('../../../../rules', import.meta.url));
const D = '/mnt/kq';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): { code: number | null; signal: string | null; out: string; pid: number } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: env ?? process.env, timeout: 60_000 });
  return { code: r.status, signal: r.signal, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().slice(-800), pid: r.pid ?? 0 };
}

/** a qhelper that waits for a line on stdin: its pid, its output so far, go() and its end */
async function waiting(args: string[], env?: NodeJS.ProcessEnv) {
  const c: ChildProcess = spawn(join(D, 'qhelper'), args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
  let out = '';
  c.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  c.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<{ code: number | null; signal: string | null; out: string }>((r) => c.once('close', (code, signal) => r({ code, signal, out: out.trim() })));
  for (let i = 0; i < 200 && !/child=\d+|ready/.test(out); i++) await sleep(50);
  return { pid: c.pid!, child: Number(/child=(\d+)/.exec(out)?.[1] ?? 0), out: () => out, go: () => { c.stdin!.end('go\n'); return done; }, done };
}

export async function run_(dir: string): Promise<Record<string, unknown>> {
  const obs: Record<string, unknown> = {};
  mkdirSync(D, { recursive: true });
  spawnSync('mount', ['-t', 'tmpfs', 'tmpfs', D]);
  for (const f of ['qhelper', 'qpreload.so']) copyFileSync(join(dir, f), join(D, f));
  chmodSync(join(D, 'qhelper'), 0o755);
  for (const n of ['denied-true', 'other-true']) { copyFileSync('/bin/true', join(D, n)); chmodSync(join(D, n), 0o755); }

  const h = await loadEnforcement({ selfPid: process.pid, config: { enforce: 1, mprotect_limit: 0, module_mode: 0 } });
  const denied: DecodedDenied[] = [];
  const stop = h.onDenied((ev) => denied.push(ev));
  const store = VerdictStore.open('/root/krsi-q-store');
  const enf = new Enforcer(store, new PinnedMapWriter(h.maps as unknown as VerdictMaps, true, () => {}), { selfPid: process.pid });
  // the verdict's event time (CLOCK_BOOTTIME, as events carry it): the processes it names started before it
  const verdict = (op: 'quarantine' | 'kill', pid: number): Verdict => ({ id: `q:${op}:pid:${pid}`, rule: 'q', op, subject: { kind: 'pid', pid }, ts: bootTimeNs(), ttl_ns: 0, expires: 0, mode: 'enforce' });
  try {
    // ---- tree: a child forked before the verdict ----
    {
      const control = await waiting(['tree', join(D, 'other-true')]);
      const before = await waiting(['tree', join(D, 'other-true')]);
      const covered = await waiting(['tree', join(D, 'other-true')]);
      const unrelated = await waiting(['tree', join(D, 'other-true')]);
      const walked = await waiting(['tree', join(D, 'other-true')]);
      // the parent's entry only, written straight into the map: what the kernel's fork copy gives
      h.maps.deny_tgid.update(encodeTgidKey(before.pid), encodeVerdict({ expires: 0, ops: KRSI_OP.QUARANTINE, rule_id: 0 }));
      enf.apply(verdict('quarantine', covered.pid), [covered.child]);
      // no descendants from the process table: the enforcer finds the child in /proc
      enf.apply(verdict('quarantine', walked.pid));
      obs.tree = {
        control: await control.go(), parentOnly: await before.go(), covered: await covered.go(), unrelated: await unrelated.go(), walked: await walked.go(),
        coveredEntry: h.maps.deny_tgid.lookup(encodeTgidKey(covered.child)) !== undefined || 'gone',
      };
    }
    // ---- kill ----
    {
      const kernelOnly = await waiting(['wait-open']);
      h.maps.deny_tgid.update(encodeTgidKey(kernelOnly.pid), encodeVerdict({ expires: 0, ops: KRSI_OP.KILL, rule_id: 0 }));
      const k = await kernelOnly.go();
      const user = await waiting(['wait-open']);
      const t0 = Date.now();
      const applied = enf.apply(verdict('kill', user.pid));
      const u = await user.done;
      const gone = run(join(D, 'qhelper'), ['mmapx', join(D, 'other-true')]);
      const other = await waiting(['wait-open']);
      obs.kill = {
        kernel: k, user: { ...u, applied, ms: Date.now() - t0, kills: { ...enf.kills } },
        gone: enf.apply(verdict('kill', gone.pid)), unrelated: await other.go(),
        records: denied.filter((d) => d.op === 'kill').map((d) => ({ pid: d.pid, reason: d.reason })), kernelPid: kernelOnly.pid,
      };
    }
    // ---- doors: executable mappings of a deny-listed file ----
    {
      h.maps.deny_inode.update(encodeInodeKey(kernelFileId(join(D, 'denied-true'))), encodeVerdict({ expires: 0, ops: KRSI_OP.EXEC, rule_id: 0 }));
      const ldso = '/lib64/ld-linux-x86-64.so.2';
      const n = denied.length;
      obs.doors = {
        exec: run(join(D, 'denied-true'), []),
        ldso: run(ldso, [join(D, 'denied-true')]),
        ldsoOther: run(ldso, [join(D, 'other-true')]),
        mmap: run(join(D, 'qhelper'), ['mmapx', join(D, 'denied-true')]),
        mmapOther: run(join(D, 'qhelper'), ['mmapx', join(D, 'other-true')]),
        unrelated: run('/bin/true', []),
      };
      await sleep(300);
      (obs.doors as Record<string, unknown>).records = denied.slice(n).map((d) => ({ op: d.op, reason: d.reason, key: d.key }));
    }
    // ---- btrfs: a subvolume's stat st_dev is not the superblock's s_dev ----
    {
      const b: Record<string, unknown> = {};
      obs.btrfs = b;
      run('modprobe', ['loop']);
      b.modprobe = run('modprobe', ['btrfs']);
      const img = '/root/q-btrfs.img', mnt = '/mnt/kqb';
      mkdirSync(mnt, { recursive: true });
      b.mkfs = run('sh', ['-c', `PATH=/usr/sbin:/usr/bin:/sbin:/bin; truncate -s 128M ${img} && mkfs.btrfs -q -f ${img} && mount -o loop ${img} ${mnt} && btrfs -q subvolume create ${mnt}/sub`]);
      if (b.mkfs && (b.mkfs as { code: number }).code === 0) {
        for (const n of ['denied', 'copy', 'stat-keyed']) { copyFileSync('/bin/true', `${mnt}/sub/${n}`); chmodSync(`${mnt}/sub/${n}`, 0o755); }
        const st = statSync(`${mnt}/sub/stat-keyed`);
        const k = kernelFileId(`${mnt}/sub/denied`);
        h.maps.deny_inode.update(encodeInodeKey(k), encodeVerdict({ expires: 0, ops: KRSI_OP.EXEC, rule_id: 0 }));
        h.maps.deny_inode.update(encodeInodeKey({ dev: st.dev, ino: st.ino }), encodeVerdict({ expires: 0, ops: KRSI_OP.EXEC, rule_id: 0 }));
        Object.assign(b, {
          statDev: st.dev, kernelDev: k.dev,
          denied: run(`${mnt}/sub/denied`, []), copy: run(`${mnt}/sub/copy`, []), statKeyed: run(`${mnt}/sub/stat-keyed`, []),
        });
        spawnSync('umount', [mnt]);
      }
    }
    // ---- krsi run with the bundled chain rule ----
    {
      await stop();
      h.close();
      unloadEnforcement();
      obs.krsi = await krsiRun(dir);
    }
  } finally {
    await enf.close().catch(() => {});
    try { await stop(); } catch { /* stopped */ }
    unloadEnforcement();
    spawnSync('umount', [D]);
  }
  return obs;
}

async function krsiRun(dir: string): Promise<Record<string, unknown>> {
  const rules = JSON.parse(readFileSync(join(RULES, 'preload-wx-quarantine.json'), 'utf8'));
  const lists = JSON.parse(readFileSync(join(RULES, 'suspicious-env.json'), 'utf8')).lists;
  rules.lists = { preload_allowlist: lists.preload_allowlist };
  rules.rules.push({
    id: 'q-canary', description: 'readiness probe', tags: ['test'], severity: 'info', mode: 'monitor',
    match: { all: [{ fact: 'type', operator: 'equal', value: 'exec' }, { fact: 'env', path: '$.KRSI_Q_CANARY', operator: 'exists', value: true }] },
    actions: [{ type: 'alert', message: 'canary' }],
  });
  delete rules.$schema;
  writeFileSync(join(D, 'rules.json'), JSON.stringify(rules));
  const p = spawn(process.execPath, [CLI, 'run', '--rules', join(D, 'rules.json'), '--mode', 'enforce', '--format', 'json', '--state', join(D, 'state'), '--no-self-protect', '--watch-env', 'KRSI_Q_CANARY'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Record<string, any>[] = [];
  let buf = '', err = '';
  p.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) { try { out.push(JSON.parse(buf.slice(0, i))); } catch { err += buf.slice(0, i); } }
  });
  p.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const r: Record<string, unknown> = {};
  try {
    const t0 = Date.now();
    for (let n = 0; !out.some((o) => o.rule === 'q-canary'); n++) {
      if (p.exitCode !== null) throw new Error(`krsi run exited ${p.exitCode}: ${err.slice(-3000)}`);
      if (Date.now() - t0 > 240_000) throw new Error(`krsi run not ready: ${err.slice(-3000)}`);
      spawnSync('/bin/true', [], { env: { ...process.env, KRSI_Q_CANARY: String(n) } });
      await sleep(250);
    }
    r.readyMs = Date.now() - t0;
    const env = (preload?: string) => { const e = { ...process.env }; delete e.LD_PRELOAD; if (preload) e.LD_PRELOAD = preload; return e; };
    r.child = run(join(D, 'qhelper'), ['wxchild'], env(join(D, 'qpreload.so')));
    r.parent = run(join(D, 'qhelper'), ['wxparent'], env(join(D, 'qpreload.so')));
    r.plain = run(join(D, 'qhelper'), ['wxchild'], env());
    await sleep(1000);
  } catch (e) {
    r.error = (e as Error).message;
  } finally {
    if (p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((res) => p.once('exit', res));
      p.kill('SIGINT');
      await Promise.race([gone, sleep(30_000)]);
    }
  }
  r.stderr = err.slice(-1500);
  r.outputs = out.filter((o) => o.rule !== 'q-canary').map((o) => ({ kind: o.kind, rule: o.rule, pid: o.pid, op: o.op, applied: o.applied, descendants: o.descendants }));
  r.logKills = err.split('\n').filter((l) => l.includes('"result"')).slice(-10);
  return r;
}

export { run_ as run };
