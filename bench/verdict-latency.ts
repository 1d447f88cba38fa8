// bench/verdict-latency: the time from a verdict in the engine to its entry in the BPF map, through
// Enforcer.apply() (translation with the model's merge, encoding, bpf_map_update_elem, queuing the
// lmdb write), against the floor measured in the same run: a bare update of a pre-encoded entry.
// Runs on any root host: the maps are real BPF hash maps of the enforcement maps' shapes (created
// here; no LSM program needed to time the write). The in-VM end-to-end test logs the same figure
// from a live `krsi run --mode enforce` ("verdict -> map entry latency", event ts -> map entry).
// With --live (issue 11): the chain rule on the live signals of this host, through the engine and the
// enforcer (maps created here, the kill op's SIGKILL from user space): an LD_PRELOAD'ed helper's child makes
// a page W+X; event -> verdict in the map (the event's kernel ts to the map write) and, for the kill op,
// event -> process dead (the W+X event's kernel ts to its exit event's), medians and p99, idle and while a
// generator makes 100k mprotect/s (test/live/fixtures/loadgen.c).
// usage (root): node --import tsx bench/verdict-latency.ts [verdicts=20000] [runs=5]
//               node --import tsx bench/verdict-latency.ts --live [victims=30]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMap, requireLiveBpf } from '../bpf/libbpf.ts';
import { Enforcer, PinnedMapWriter, type VerdictMaps } from '../enforcers/index.ts';
import { VerdictStore, bootTimeNs } from '../enforcers/store.ts';
import { LAYOUTS, encodeTgidKey, encodeVerdict } from '../enforcers/maps.ts';
import type { Verdict } from '../engine/types.ts';

const LIVE = process.argv.includes('--live');
const args = process.argv.slice(2).filter((a) => a !== '--live');
const N = Number(args[0] ?? 20_000);
const RUNS = Number(args[1] ?? 5);
requireLiveBpf();
if (LIVE) {
  await (await import('./verdict-latency-live.ts')).live(Number(args[0] ?? 30));
  process.exit(0);
}

const HASH = 1, ARRAY = 2;
const V = LAYOUTS.krsi_verdict.size, K = LAYOUTS.krsi_inode_key.size;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))];

function maps(): VerdictMaps {
  return {
    deny_tgid: createMap(HASH, 'b_deny_tgid', 4, V, 65536),
    deny_inode: createMap(HASH, 'b_deny_inode', K, V, 65536),
    module_allow: createMap(HASH, 'b_mod_allow', K, V, 1024),
    module_deny: createMap(HASH, 'b_mod_deny', K, V, 1024),
    config: createMap(ARRAY, 'b_config', 4, LAYOUTS.krsi_config.size, 1),
  };
}

const apply: number[] = [], floor: number[] = [], toMap: number[] = [];
for (let run = 0; run < RUNS; run++) {
  const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-'));
  const m = maps();
  const enf = new Enforcer(VerdictStore.open(dir), new PinnedMapWriter(m), { selfPid: process.pid + 1_000_000, procStart: () => 1 });
  const now = bootTimeNs();
  // half pid verdicts (quarantine), half inode verdicts (exec), every one a new key
  const vs: Verdict[] = Array.from({ length: N }, (_, i) =>
    i % 2
      ? { id: `b:quarantine:pid:${10_000 + i}`, rule: 'b', op: 'quarantine', subject: { kind: 'pid', pid: 10_000 + i }, ts: now, ttl_ns: 600e9, expires: now + 600e9, mode: 'enforce' }
      : { id: `b:exec:inode:7:${i}`, rule: 'b', op: 'exec', subject: { kind: 'inode', dev: 7, ino: i + 1 }, ts: now, ttl_ns: 0, expires: 0, mode: 'enforce' });
  const per: number[] = [];
  for (const v of vs) {
    const t0 = process.hrtime.bigint();
    enf.apply(v);
    per.push(Number(process.hrtime.bigint() - t0));
  }
  apply.push(median(per));
  toMap.push(enf.latency().median_ns);
  // floor: the same number of bare updates of pre-encoded entries into a fresh map
  const raw = createMap(HASH, 'b_floor', 4, V, 65536);
  const keys = Array.from({ length: N }, (_, i) => encodeTgidKey(10_000 + i));
  const val = encodeVerdict({ expires: now + 600e9, ops: 7, rule_id: 1 });
  const fl: number[] = [];
  for (const k of keys) {
    const t0 = process.hrtime.bigint();
    raw.update(k, val);
    fl.push(Number(process.hrtime.bigint() - t0));
  }
  floor.push(median(fl));
  console.log(`run ${run + 1}: verdict -> map entry median ${(enf.latency().median_ns / 1e3).toFixed(2)} us p99 ${(enf.latency().p99_ns / 1e3).toFixed(2)} us; whole apply() (with the lmdb write queued) median ${(median(per) / 1e3).toFixed(2)} us p99 ${(p99(per) / 1e3).toFixed(2)} us; bare update median ${(median(fl) / 1e3).toFixed(2)} us`);
  raw.close();
  await enf.close();
  rmSync(dir, { recursive: true, force: true });
}
const a = median(apply), f = median(floor), m = median(toMap);
console.log(`verdict -> map entry (Enforcer.apply up to the map write), median of ${RUNS} run medians over ${N} verdicts: ${(m / 1e3).toFixed(2)} us`);
console.log(`whole Enforcer.apply() including queuing the lmdb write: ${(a / 1e3).toFixed(2)} us`);
console.log(`bare bpf_map_update_elem (same run, pre-encoded): ${(f / 1e3).toFixed(2)} us; ratios ${(m / f).toFixed(2)}x (to map) ${(a / f).toFixed(2)}x (whole)`);
