// bpf/features.ts: what each program needs from the kernel, read from the running kernel's BTF. On this host:
// the LSM hooks and BTF tracepoints exist in its BTF, a made-up hook does not, and the parser reads
// functions, typedefs and enumerators from a real BTF blob (the kernel's, and an object's own).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { btfNames, kernelFeatures, sectionNeeds } from '../../bpf/features.ts';
import { needClang, needLibbpf } from '../helpers/prereq.ts';

const VMLINUX = '/sys/kernel/btf/vmlinux';
const noBtf = existsSync(VMLINUX) ? undefined : 'needs kernel BTF (/sys/kernel/btf/vmlinux)';

test('btfNames reads functions, typedefs and enumerators from the kernel\'s BTF', { skip: noBtf }, () => {
  const names = btfNames(readFileSync(VMLINUX));
  assert.ok(names.has('func:bpf_lsm_bprm_check_security'));
  assert.ok(names.has('typedef:btf_trace_sched_process_exec'));
  assert.ok(names.has('enum:kernel_read_file_id.READING_MODULE'));
  assert.ok(!names.has('func:bpf_lsm_no_such_hook'));
  assert.throws(() => btfNames(Buffer.from('not btf at all, not btf at all')), /bad magic/);
});

test('sectionNeeds: a hook, a BTF tracepoint, a tracepoint and a kprobe, each present or missing', () => {
  const btf = new Set(['func:bpf_lsm_file_mprotect', 'typedef:btf_trace_sched_process_exec']);
  const syms = () => new Set(['vfs_unlink', 'x']);
  assert.deepEqual(sectionNeeds('lsm/file_mprotect', btf, undefined, syms).present, true);
  assert.deepEqual(sectionNeeds('lsm/bpf_map', btf, undefined, syms).present, false);
  assert.deepEqual(sectionNeeds('tp_btf/sched_process_exec', btf, undefined, syms).present, true);
  assert.deepEqual(sectionNeeds('tp_btf/module_load', btf, undefined, syms).present, false);
  assert.deepEqual(sectionNeeds('tp/syscalls/sys_enter_unlink', btf, undefined, syms).present, undefined, 'no tracefs: cannot tell');
  assert.deepEqual(sectionNeeds('kprobe/vfs_unlink', btf, undefined, syms).present, true);
  assert.deepEqual(sectionNeeds('kprobe/gone', btf, undefined, syms).present, false);
  assert.deepEqual(sectionNeeds('iter/bpf_map_elem', new Set(['func:bpf_iter_bpf_map_elem']), undefined, syms).present, true);
  assert.deepEqual(sectionNeeds('iter/bpf_map_elem', btf, undefined, syms).present, false);
  assert.match(sectionNeeds('lsm/bpf_map', undefined, undefined, syms).needs, /bpf_lsm_bpf_map/);
});

test('kernelFeatures lists every program of the signal, enforcement and self-protection objects with what it needs', { skip: noBtf ?? needLibbpf() ?? needClang() }, () => {
  const f = kernelFeatures();
  assert.equal(f.btf, true);
  const sections = f.programs.map((p) => p.section);
  for (const s of ['lsm/bpf_map', 'lsm/ptrace_access_check', 'lsm/bprm_check_security', 'lsm/file_mprotect', 'lsm/kernel_read_file', 'lsm/kernel_load_data', 'tp_btf/sched_process_exec', 'tp_btf/module_load']) {
    assert.ok(sections.includes(s), `${s} in ${sections.join(', ')}`);
  }
  // this host kernel has BPF LSM hooks in its BTF even though it refuses LSM programs
  assert.equal(f.programs.find((p) => p.section === 'lsm/bprm_check_security')?.present, true);
  assert.equal(f.programs.find((p) => p.section === 'tp_btf/sched_process_exec')?.present, true);
  assert.equal(f.enums['kernel_read_file_id.READING_MODULE'], true);
});

// An LSM hook's arguments change between kernels (6.16 gave the bpf hook a `bool kernel`); a program that
// names one argument too few reads the next one as `ret`. Every BPF_PROG on an lsm/ section is checked against
// the running kernel's BTF; the bpf hook's program reads its ret at the index the kernel has (bpf_hook_args).
test('every LSM program takes the arguments its hook has in this kernel\'s BTF', { skip: noBtf }, async () => {
  const { funcParamCount } = await import('../../bpf/features.ts');
  const btf = readFileSync(VMLINUX);
  const { readdirSync } = await import('node:fs');
  // LSM hooks that return void (include/linux/lsm_hook_defs.h: LSM_RET_VOID): the program names no ret
  const VOID_HOOKS = new Set(['bprm_committing_creds', 'bprm_committed_creds']);
  const dir = new URL('../../bpf/', import.meta.url);
  let checked = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.bpf.c'))) {
    const src = readFileSync(new URL(f, dir), 'utf8');
    for (const m of src.matchAll(/SEC\("lsm\/(\w+)"\)\s*\nint\s+(BPF_PROG\(\s*\w+\s*,([^)]*)\)|\w+\(unsigned long long \*ctx\))/g)) {
      const hook = m[1];
      const kernel = funcParamCount(btf, `bpf_lsm_${hook}`);
      assert.ok(kernel !== undefined, `${f}: no bpf_lsm_${hook} in this kernel`);
      if (m[3] === undefined) {
        // a raw-ctx program: it must know every count this hook has had (the bpf hook: 3, and 4 from 6.16)
        assert.equal(hook, 'bpf', `${f}: lsm/${hook} reads its ctx by hand`);
        assert.ok(kernel === 3 || kernel === 4, `bpf hook with ${kernel} arguments`);
      } else {
        // the last one is the earlier LSM's ret, except on a void hook, which has none
        const args = m[3].split(',').length - (VOID_HOOKS.has(hook) ? 0 : 1);
        assert.equal(args, kernel, `${f}: lsm/${hook} names ${args} arguments before ret; this kernel's hook has ${kernel}`);
      }
      checked++;
    }
  }
  assert.ok(checked >= 12, `${checked} LSM programs checked`);
});
