// Prerequisite probes for tests: each returns undefined when present, or a one-line skip reason.
// Use as: test('...', { skip: needRoot() ?? needClang() }, async () => { ... })
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function needRoot(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'needs root (BPF programs)';
}

export function needClang(): string | undefined {
  return have('clang') ? undefined : 'needs clang (apt-get install clang)';
}

export function needLibbpf(): string | undefined {
  const found = ['/usr/lib/x86_64-linux-gnu/libbpf.so.1', '/usr/lib/aarch64-linux-gnu/libbpf.so.1', '/usr/lib64/libbpf.so.1', '/usr/lib/libbpf.so.1'].some(existsSync);
  return found ? undefined : 'needs libbpf.so.1 (apt-get install libbpf1 libbpf-dev)';
}

export function needBpftool(): string | undefined {
  return have('bpftool') ? undefined : 'needs bpftool (apt-get install bpftool)';
}

export function needCc(): string | undefined {
  return have('cc') ? undefined : 'needs a C compiler (apt-get install gcc)';
}

export function needQemu(): string | undefined {
  return have('qemu-system-x86_64') ? undefined : 'needs qemu (apt-get install qemu-system-x86 busybox-static)';
}

/** all live-BPF prerequisites at once */
export function needLiveBpf(): string | undefined {
  return needRoot() ?? needClang() ?? needLibbpf();
}
