// The BPF build step: bpf/<name>.bpf.c -> bpf/build/<name>.o with clang, rebuilt when the object is
// missing or older than its sources (the .c and the shared headers). vmlinux.h is generated once with
// bpftool for programs that include it. `npm run build` builds every bpf/*.bpf.c (the objects are CO-RE);
// an installed package ships bpf/build/*.o and no sources, and ensureObject uses those: no clang at run time.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childLogger } from '../lib/logger.ts';
import { packagePath } from '../lib/package.ts';

const log = childLogger('bpf-build');

/** bpf/ (sources and shared headers) and bpf/build/ (objects, vmlinux.h) */
export const BPF_DIR = packagePath('bpf');
export const BUILD_DIR = join(BPF_DIR, 'build');

export class BuildError extends Error {
  readonly exitCode = 3;
  constructor(message: string) {
    super(message);
    this.name = 'BuildError';
  }
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function mtime(p: string): number {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

function targetArch(): string {
  switch (process.arch) {
    case 'x64': return 'x86';
    case 'arm64': return 'arm64';
    case 's390x': return 's390';
    case 'ppc64': return 'powerpc';
    default: return process.arch;
  }
}

/** the source for a name ('signals' -> bpf/signals.bpf.c) or a path to a .bpf.c file */
export function sourceOf(nameOrPath: string): string {
  if (nameOrPath.endsWith('.bpf.c')) return isAbsolute(nameOrPath) ? nameOrPath : resolve(nameOrPath);
  return join(BPF_DIR, `${nameOrPath}.bpf.c`);
}

/** bpf/build/vmlinux.h from the running kernel's BTF (cached) */
export function ensureVmlinuxH(): string {
  const out = join(BUILD_DIR, 'vmlinux.h');
  if (existsSync(out)) return out;
  if (!existsSync('/sys/kernel/btf/vmlinux')) throw new BuildError('krsi: /sys/kernel/btf/vmlinux missing: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF)');
  if (!have('bpftool')) throw new BuildError('krsi: bpftool not found: install the Debian package bpftool (apt-get install bpftool)');
  mkdirSync(BUILD_DIR, { recursive: true });
  const r = spawnSync('bpftool', ['btf', 'dump', 'file', '/sys/kernel/btf/vmlinux', 'format', 'c'], { maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new BuildError(`krsi: bpftool btf dump failed: ${r.stderr?.toString().trim()}`);
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, r.stdout);
  renameSync(tmp, out);
  log.info({ out }, 'generated vmlinux.h');
  return out;
}

/**
 * Compile bpf/<name>.bpf.c (or the given .bpf.c path; outside bpf/ into bpf/build/ext/) into bpf/build/<name>.o when the object is missing
 * or older than the source or any header next to it or in bpf/; returns the object's path. Without the source (an installed
 * package), krsi's own objects are the prebuilt bpf/build/<name>.o.
 */
export function ensureObject(nameOrPath: string): string {
  const src = sourceOf(nameOrPath);
  // sources outside bpf/ (test fixtures) build into bpf/build/ext/ so their names never clash with krsi's
  const outDir = dirname(src) === BPF_DIR ? BUILD_DIR : join(BUILD_DIR, 'ext');
  const out = join(outDir, `${basename(src, '.bpf.c')}.o`);
  if (!existsSync(src)) {
    if (outDir === BUILD_DIR && existsSync(out)) return out;
    throw new BuildError(`krsi: BPF source ${src} not found${outDir === BUILD_DIR ? ` and no prebuilt ${out}` : ''}`);
  }
  const headers = new Set<string>();
  for (const dir of [BPF_DIR, dirname(src)]) {
    for (const f of readdirSync(dir)) if (f.endsWith('.h')) headers.add(join(dir, f));
  }
  const newest = Math.max(mtime(src), ...[...headers].map(mtime));
  if (mtime(out) >= newest) return out;

  if (!have('clang')) throw new BuildError('krsi: clang not found: install the Debian package clang (apt-get install clang llvm libbpf-dev)');
  if (/^\s*#\s*include\s*[<"]vmlinux\.h[>"]/m.test(readFileSync(src, 'utf8'))) ensureVmlinuxH();
  mkdirSync(outDir, { recursive: true });
  const args = ['-g', '-O2', '-target', 'bpf', `-D__TARGET_ARCH_${targetArch()}`, '-I', BPF_DIR, '-I', BUILD_DIR, '-I', dirname(src)];
  // Debian keeps asm/ headers in the multiarch directory, which clang -target bpf does not search
  const multiarch = `/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`;
  if (existsSync(multiarch)) args.push('-idirafter', multiarch);
  const tmp = `${out}.${process.pid}.tmp`;
  const r = spawnSync('clang', [...args, '-c', src, '-o', tmp], { encoding: 'utf8' });
  if (r.status !== 0) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing written
    }
    const hint = /bpf\/bpf_helpers\.h/.test(r.stderr) ? ' (install the Debian package libbpf-dev)' : '';
    throw new BuildError(`krsi: compiling ${src} failed${hint}:\n${r.stderr.trim()}`);
  }
  renameSync(tmp, out);
  log.info({ src, out }, 'compiled');
  return out;
}

/** every bpf/*.bpf.c */
export function buildAll(): string[] {
  return readdirSync(BPF_DIR).filter((f) => f.endsWith('.bpf.c')).sort().map((f) => ensureObject(join(BPF_DIR, f)));
}

// `node dist/bpf/build.js` (npm run build) or `node --import tsx bpf/build.ts`: build everything
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    for (const o of buildAll()) process.stdout.write(`${o}\n`);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit((e as BuildError).exitCode ?? 1);
  }
}
