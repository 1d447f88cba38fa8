// Issue 11's evasions on a BPF-LSM kernel: one boot per kernel of the matrix runs every area
// (test/vm/guest/evasion/<area>.ts: a real process doing each technique, and its negative); each area's
// tests (test/vm/evasion/<area>.ts) assert what its guest side observed.
import { describe, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmAvailable, runTsInVm, REPO_ROOT, VM_KERNELS, vmKernelLabel, type VmKernel, type VmResult } from './vm.ts';
import { needCc, needClang } from '../helpers/prereq.ts';
import { HOST_AREAS } from './evasion/index.ts';

for (const kernel of VM_KERNELS) cases(kernel);

function cases(kernel: VmKernel): void {
  const skip = vmAvailable(kernel) ?? needCc() ?? needClang();
  describe(`evasions on BPF-LSM [${vmKernelLabel(kernel)}]`, { skip }, () => {
    let dir = '';
    let vm: VmResult | undefined;
    let r: Record<string, any> = {};
    const skipped: Record<string, string> = {};

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'krsi-vm-evasion-'));
      for (const [name, a] of Object.entries(HOST_AREAS)) {
        mkdirSync(join(dir, name), { recursive: true });
        const why = await a.prepare(join(dir, name), kernel);
        if (why) skipped[name] = why;
      }
      const areas = Object.keys(HOST_AREAS).filter((n) => !skipped[n]);
      const only = (process.env.KRSI_EVASION_AREAS ?? '').split(/[\s,]+/).filter(Boolean);
      const run = only.length ? areas.filter((a) => only.includes(a)) : areas;
      vm = await runTsInVm(join(REPO_ROOT, 'test/vm/guest/evasion-cases.ts'), [dir], {
        rw: dir, timeoutMs: 1_500_000, kernel, env: { KRSI_EVASION_AREAS: run.join(' ') },
      });
      const f = join(dir, 'results.json');
      if (existsSync(f)) r = JSON.parse(readFileSync(f, 'utf8'));
      const ms = Object.entries(r).map(([k, v]) => `${k} ${v.ms} ms`).join(', ');
      console.log(`# evasion VM run [${vmKernelLabel(kernel)}]: ${vm.ms} ms (${ms})`);
    });
    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('the guest ran and exited 0', () => {
      assert.equal(vm?.code, 0, `${vm?.stdout}\n${vm?.stderr}`);
    });

    for (const [name, a] of Object.entries(HOST_AREAS)) {
      describe(name, () => {
        const result = () => {
          if (skipped[name]) return undefined;
          const v = r[name];
          assert.ok(v, `area ${name} did not run:\n${vm?.stdout}\n${vm?.stderr}`);
          assert.equal(v.ok, true, v.error);
          return v;
        };
        a.register(result, kernel);
      });
    }
  });
}
