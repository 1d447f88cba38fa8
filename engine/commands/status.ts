// krsi status: what supported() found on this host (text, or --format json). Always exits 0.
import type { Command } from 'commander';
import { Option } from 'commander';
import { supported, type Support } from '../../bpf/support.ts';

const yes = (b: boolean) => (b ? 'yes' : 'no ');

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
    .description('show what this host supports: root, libbpf, BTF, ring buffer, tracepoints, tp_btf, BPF LSM, modules')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((o: { format: 'text' | 'json' }) => {
      const s = supported();
      process.stdout.write(o.format === 'json' ? JSON.stringify(s) + '\n' : formatStatus(s));
    });
}
