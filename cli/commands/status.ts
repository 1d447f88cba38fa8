// krsi status: what supported() found on this host (text, or --format json). Always exits 0.
import type { Command } from 'commander';
import { Option } from 'commander';
import { supported, type Support } from '../../bpf/support.ts';
import { kernelFeatures, type KernelFeatures } from '../../bpf/features.ts';

const yes = (b: boolean) => (b ? 'yes' : 'no ');

const mark = (b: boolean | undefined) => (b === undefined ? '?  ' : yes(b));

/** one line per program: what it needs from the kernel and whether this kernel has it; the missing ones first */
export function formatFeatures(f: KernelFeatures): string {
  const lines = [`kernel features (from ${f.btf ? 'the kernel\'s BTF' : 'no BTF: hooks and BTF tracepoints unknown'}):`];
  const rows = [...f.programs].sort((a, b) => Number(a.present !== false) - Number(b.present !== false));
  for (const p of rows) lines.push(`  ${mark(p.present)}  ${`${p.object}/${p.program}`.padEnd(32)} ${p.needs}`);
  for (const [e, ok] of Object.entries(f.enums)) lines.push(`  ${mark(ok)}  ${'enum value'.padEnd(32)} ${e}`);
  const missing = f.programs.filter((p) => p.present === false);
  lines.push(missing.length ? `missing: ${missing.map((p) => `${p.object}/${p.program}`).join(', ')} (those programs cannot load here)` : 'missing: none');
  return lines.join('\n') + '\n';
}

export function formatStatus(s: Support): string {
  const rows: [string, boolean, string][] = [
    ['root', s.root, ''],
    ['libbpf', s.libbpf, s.libbpf ? `${s.libbpfVersion ?? '?'} (${s.libbpfPath})` : 'install libbpf1'],
    ['btf', s.btf, '/sys/kernel/btf/vmlinux'],
    ['ringbuf', s.ringbuf, 'BPF_MAP_TYPE_RINGBUF'],
    ['tracepoints', s.tracepoints, 'tp/ programs load and attach'],
    ['tpBtf', s.tpBtf, 'tp_btf/ programs load and attach'],
    ['lsmActive', s.lsmActive, s.lsms ? `active LSMs: ${s.lsms.join(',')}` : ''],
    ['lsmLoads', s.lsmLoads, 'an LSM program loads'],
    ['modules', s.modules, '/proc/modules'],
  ];
  const lines = [`krsi status (kernel ${s.kernel})`];
  for (const [k, ok, note] of rows) lines.push(`  ${k.padEnd(12)} ${yes(ok)}  ${note}`.trimEnd());
  lines.push(`live signals: ${s.live ? 'available' : 'unavailable'}; enforcement: ${s.enforce ? 'available' : 'unavailable'}`);
  if (s.reasons.length) {
    lines.push('why:');
    for (const r of s.reasons) lines.push(`  - ${r}`);
  }
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  program
    .command('status')
    .description('show what this host supports: root, libbpf, BTF, ring buffer, tracepoints, tp_btf, BPF LSM, modules, and the kernel feature each signal and hook program relies on')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((o: { format: 'text' | 'json' }) => {
      const s = supported();
      let features: KernelFeatures | { error: string };
      try {
        features = kernelFeatures();
      } catch (e) {
        features = { error: (e as Error).message.split('\n')[0] };
      }
      if (o.format === 'json') process.stdout.write(JSON.stringify({ ...s, features }) + '\n');
      else process.stdout.write(formatStatus(s) + ('error' in features ? `kernel features: unknown (${features.error})\n` : formatFeatures(features)));
    });
}
