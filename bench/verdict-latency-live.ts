// bench/verdict-latency.ts --live: the chain rule's verdicts on this host's live signals (see there).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMap } from '../bpf/libbpf.ts';
import { Enforcer, KernelEnforcement, PinnedMapWriter, type VerdictMaps } from '../enforcers/index.ts';
import { VerdictStore } from '../enforcers/store.ts';
import { LAYOUTS } from '../enforcers/maps.ts';
import { Engine } from '../engine/engine.ts';
import { loadRuleSources } from '../engine/rules/load.ts';
import { krsiEngine } from '../engine/pipeline.ts';
import { startSignals } from '../signals/live.ts';
import { liveEvents } from '../cli/live-runs.ts';
import { each } from '../lib/rx/each.ts';
import type { KrsiEvent } from '../signals/events.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const q = (xs: number[], f: number) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.floor(f * s.length))] : NaN; };
const ms = (ns: number) => (ns / 1e6).toFixed(2);
const sleep = (n: number) => new Promise((r) => setTimeout(r, n));

export async function live(victims: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-vlat-'));
  const cc = (args: string[]) => { const r = spawnSync('cc', args, { encoding: 'utf8' }); if (r.status !== 0) throw new Error(r.stderr); };
  cc(['-O2', '-pthread', '-o', join(dir, 'qhelper'), join(ROOT, 'test/vm/helpers/qhelper.c')]);
  cc(['-O2', '-shared', '-fPIC', '-o', join(dir, 'qpreload.so'), join(ROOT, 'test/vm/helpers/qpreload.c')]);
  cc(['-O2', '-o', join(dir, 'krsi-loadgen'), join(ROOT, 'test/live/fixtures/loadgen.c')]);
  const rule = JSON.parse(readFileSync(join(ROOT, 'rules/preload-wx-quarantine.json'), 'utf8'));
  rule.lists = { preload_allowlist: JSON.parse(readFileSync(join(ROOT, 'rules/suspicious-env.json'), 'utf8')).lists.preload_allowlist };
  const loaded = loadRuleSources([{ file: 'chain.json', text: JSON.stringify(rule) }]);
  if (!loaded.ok || !loaded.set) throw new Error(JSON.stringify(loaded.issues));
  const V = LAYOUTS.krsi_verdict.size, K = LAYOUTS.krsi_inode_key.size;
  const maps: VerdictMaps = {
    deny_tgid: createMap(1, 'v_deny_tgid', 4, V, 65536), deny_inode: createMap(1, 'v_deny_inode', K, V, 1024),
    module_allow: createMap(1, 'v_mod_allow', K, V, 16), module_deny: createMap(1, 'v_mod_deny', K, V, 16), config: createMap(2, 'v_config', 4, LAYOUTS.krsi_config.size, 1),
  };
  const enf = new Enforcer(VerdictStore.open(join(dir, 'state')), new PinnedMapWriter(maps), { selfPid: process.pid });
  const enforcement = new KernelEnforcement(enf);
  const engine = new Engine({ rules: loaded.set, enforcement });
  // the W+X event and the exit of each victim, by pid (kernel ts)
  const wx = new Map<number, number>(), dead = new Map<number, number>();
  const sig = await startSignals({ lostInterval: 0, modulesInterval: 0, ringBytes: 64 << 20 });
  const sub = liveEvents(sig, {}).events$.pipe(
    each('vlat', (batch: KrsiEvent[]) => {
      for (const e of batch) {
        if (e.comm !== 'qhelper') continue;
        if (e.type === 'mprotect' && (e.prot & 6) === 6) wx.set(e.pid, e.ts);
        else if (e.type === 'exit') dead.set(e.pid, e.ts);
      }
    }),
    krsiEngine({ engine }),
  ).subscribe((o) => { if (process.env.VLAT_DEBUG) console.log(JSON.stringify(o).slice(0, 300)); });
  const round = async (label: string) => {
    const toMap0 = enforcement.latency().event_to_map.count;
    const kill: number[] = [];
    const mapNs: number[] = [];
    for (let i = 0; i < victims; i++) {
      const env = { ...process.env, LD_PRELOAD: join(dir, 'qpreload.so') };
      // not spawnSync: the pipeline runs on this event loop
      const r = await new Promise<{ stdout: string }>((res) => {
        const c = spawn(join(dir, 'qhelper'), ['wxchild'], { env, stdio: ['ignore', 'pipe', 'ignore'] });
        let stdout = '';
        c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        c.once('close', () => res({ stdout }));
      });
      const child = Number(/child=(\d+)/.exec(r.stdout)?.[1]);
      for (let t = 0; t < 40 && !(wx.has(child) && dead.has(child)); t++) await sleep(25);
      if (wx.has(child) && dead.has(child) && /signal=9/.test(r.stdout)) kill.push(dead.get(child)! - wx.get(child)!);
    }
    const lat = (enforcement as unknown as { toMap: number[] }).toMap.slice(toMap0);
    mapNs.push(...lat);
    console.log(`${label}: ${kill.length}/${victims} W+X children killed; event -> verdict in map median ${ms(q(mapNs, 0.5))} ms, p99 ${ms(q(mapNs, 0.99))} ms; ` +
      `kill op event -> process dead median ${ms(q(kill, 0.5))} ms, p99 ${ms(q(kill, 0.99))} ms`);
    return { map: q(mapNs, 0.5), kill: q(kill, 0.5) };
  };
  let gen: ChildProcess | undefined;
  try {
    const idle = await round('idle');
    gen = spawn(join(dir, 'krsi-loadgen'), ['mprotect', '100000', '600'], { stdio: 'ignore' });
    await sleep(500);
    const load = await round('under 100k mprotect/s');
    console.log(`ratios under load / idle: to map x${(load.map / idle.map).toFixed(2)}, to dead x${(load.kill / idle.kill).toFixed(2)}; user-space kills ${JSON.stringify(enf.kills)}; lost ${sig.lost()}`);
  } finally {
    gen?.kill('SIGKILL');
    sub.unsubscribe();
    await sig.stop();
    enforcement.close();
    await enf.close();
    for (const m of Object.values(maps)) m.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
