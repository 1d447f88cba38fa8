// Issue 11's false-positive guard on BPF-LSM (guest side: test/vm/guest/evasion/workload.ts): the ordinary
// workload under `krsi run --mode enforce` with the bundled rules: every step exits 0, nothing of it is denied
// (the in-kernel mprotect counter refusing a JIT, ...), and no alert or verdict names it.
// Run alone: KRSI_VM_KERNELS=6.1 KRSI_EVASION_AREAS=workload node test/run.mjs test/vm/evasion
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HostArea } from './index.ts';
import { WORKLOAD_STEPS, describeFlagged, reportLines, type WorkloadReport } from '../../helpers/workload.ts';

const JAVA_SRC = fileURLToPath(new URL('../../live/fixtures/JitHot.java', import.meta.url));
const TOOLS = ['java', 'javac', 'node', 'make', 'cc', 'python3', 'git', 'tar', 'dpkg', 'dpkg-deb', 'stdbuf'];

export const area: HostArea = {
  prepare(dir) {
    const missing = TOOLS.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
    if (missing.length) return `needs ${missing.join(', ')} (the guest runs the host's)`;
    const c = spawnSync('javac', ['-d', dir, JAVA_SRC], { encoding: 'utf8' });
    return c.status === 0 ? undefined : `javac JitHot.java: ${c.stderr}`;
  },
  register(result) {
    const report = (t: { skip(why: string): void }): WorkloadReport | undefined => {
      const v = result();
      if (!v) return void t.skip('prepare skipped the workload');
      return v.report as WorkloadReport;
    };
    test('an ordinary workload ran under krsi run --mode enforce, every step exited 0', (t) => {
      const r = report(t);
      if (!r) return;
      for (const l of reportLines(r)) console.log(`# workload: ${l}`);
      assert.equal(r.krsi.code, 0, `krsi run exited ${r.krsi.code ?? r.krsi.signal}: ${r.krsi.stderr}`);
      assert.equal(r.script.code, 0, `workload.sh: ${r.script.signal ?? ''} ${r.script.stderr}`);
      assert.deepEqual(r.steps.map((s) => s.name), [...WORKLOAD_STEPS], 'every step ran');
      for (const s of r.steps) assert.equal(s.code, 0, `step ${s.name} failed:\n${s.out.join('\n')}`);
      assert.match(r.steps.find((s) => s.name === 'jvm')!.info.join(' '), /[1-9][0-9]* of JitHot::work/, 'the JVM compiled its hot method');
      assert.match(r.steps.find((s) => s.name === 'node')!.info.join(' '), /[1-9][0-9]* TurboFan/, 'node optimized');
      assert.equal(r.lost, 0, 'krsi lost no events');
      assert.ok((r.counts.exec ?? 0) > 20 && (r.counts.fork ?? 0) > 20, `krsi saw the workload: ${JSON.stringify(r.counts)}`);
    });
    test('nothing of it was denied (the mprotect counter, the deny lists, verdicts)', (t) => {
      const r = report(t);
      if (!r) return;
      assert.deepEqual(r.denied.map((d) => `${(d as { op: string }).op} ${(d as { reason?: string }).reason}`), [], `denied:\n${describeFlagged(r.denied)}`);
      assert.equal(r.counts.denied ?? 0, 0, 'no kernel denial record for its processes');
    });
    test('no alert and no verdict names it', (t) => {
      const r = report(t);
      if (!r) return;
      const flagged = [...r.alerts, ...r.verdicts];
      assert.deepEqual(flagged.map((x) => `${x.kind} ${(x as { rule?: string }).rule}`), [], `krsi flagged the ordinary workload:\n${describeFlagged(flagged)}`);
    });
  },
};
