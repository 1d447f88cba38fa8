// The project's BPF-LSM VM harness: boots Debian's stock kernel under qemu (TCG) with BPF LSM active and
// runs one shell command in it (test/vm/run-in-vm.sh does the work; this is the TypeScript face).
// The guest sees the host's / read-only under a tmpfs overlay, so `node --import tsx script.ts` runs
// in the guest from the checkout. The kernel package's modules are at $KRSI_VM_MODULES in the guest.
//   test('...', { skip: vmAvailable() }, async () => { const r = await runInVm('uname -r'); ... })
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const RUN_IN_VM = fileURLToPath(new URL('./run-in-vm.sh', import.meta.url));
/** the checkout's root (the guest starts in the same directory) */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Debian's two long-term kernel lines the VM boots: bookworm's 6.1 and bookworm-backports' 6.12 */
export type VmKernel = '6.1' | '6.12';
/** the kernels every VM test runs on (KRSI_VM_KERNELS="6.1" narrows the matrix for a quick local run) */
export const VM_KERNELS: readonly VmKernel[] = (process.env.KRSI_VM_KERNELS ?? '6.1 6.12')
  .split(/[\s,]+/)
  .filter((k): k is VmKernel => k === '6.1' || k === '6.12');

export interface VmOptions {
  /** the kernel line to boot (default 6.1) */
  kernel?: VmKernel;
  /** whole run, boot included; default 300 s (TCG is slow and the cores are shared) */
  timeoutMs?: number;
  /** a host directory exported read-write and mounted at the same path in the guest (results) */
  rw?: string;
  /** environment variables exported in the guest */
  env?: Record<string, string | number>;
  /** directory the guest command starts in; default the checkout's root */
  cwd?: string;
  /** guest memory (qemu -m), default 3G; vCPUs, default 2 */
  mem?: string;
  cpus?: number;
  /** file to receive the guest kernel's console log */
  consoleLog?: string;
}

export interface VmResult {
  /** the guest command's exit status; 255 when the guest never reported one (timeout, panic) */
  code: number;
  stdout: string;
  stderr: string;
  /** wall time of the whole run, boot included */
  ms: number;
}

const available = new Map<VmKernel, string | undefined>();
const versions = new Map<VmKernel, string | undefined>();

function script(kernel: VmKernel, ...args: string[]) {
  return spawnSync('bash', [RUN_IN_VM, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, KRSI_VM_KERNEL: kernel } });
}

/** undefined when the VM can run `kernel` here, else a one-line skip reason (cached) */
export function vmAvailable(kernel: VmKernel = '6.1'): string | undefined {
  if (available.has(kernel)) return available.get(kernel);
  let reason: string | undefined;
  if (process.platform !== 'linux' || process.arch !== 'x64') reason = 'VM tests need an x86_64 Linux host';
  else {
    const r = script(kernel, '--check');
    if (r.status !== 0) reason = `${kernel}: ${(r.stdout?.trim() || r.stderr?.trim() || `run-in-vm.sh --check failed (${r.status})`).split('\n')[0]}`;
  }
  available.set(kernel, reason);
  return reason;
}

/** the guest kernel's version (e.g. 6.1.0-57-amd64, 6.12.95+deb12-amd64), or undefined when it cannot be resolved */
export function vmKernelVersion(kernel: VmKernel = '6.1'): string | undefined {
  if (!versions.has(kernel)) {
    const r = script(kernel, '--kver');
    const v = r.stdout?.trim();
    versions.set(kernel, r.status === 0 && v ? v : undefined);
  }
  return versions.get(kernel);
}

/** what a VM test's name says about its kernel: "6.12.95+deb12-amd64" (or the line when unresolved) */
export function vmKernelLabel(kernel: VmKernel): string {
  return vmKernelVersion(kernel) ?? kernel;
}

/** the guest kernel's headers directory (downloaded into the VM cache on first use), or a one-line reason */
export function vmHeaders(kernel: VmKernel = '6.1'): { dir?: string; why?: string } {
  const r = script(kernel, '--headers');
  const dir = r.stdout?.trim();
  if (r.status === 0 && dir) return { dir };
  return { why: `no headers for the ${kernel} guest kernel: ${(r.stderr?.trim() || `run-in-vm.sh --headers failed (${r.status})`).split('\n').pop()}` };
}

function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** run `cmd` (sh syntax) as root in a fresh VM; resolves with its exit code and output, never rejects on a guest failure */
export async function runInVm(cmd: string, o: VmOptions = {}): Promise<VmResult> {
  // the BPF objects are built here, never in the guest: a guest that finds them missing or older than their
  // sources would run clang under TCG in its own memory (and read objects the host may be writing)
  try {
    (await import('../../bpf/build.ts')).buildAll();
  } catch {
    // no clang here: the guest reports what it cannot load
  }
  const timeoutMs = o.timeoutMs ?? 300_000;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VM_TIMEOUT: String(Math.max(1, Math.ceil(timeoutMs / 1000))),
    KRSI_VM_KERNEL: o.kernel ?? '6.1',
  };
  if (o.rw) env.VM_RW = o.rw;
  if (o.mem) env.VM_MEM = o.mem;
  if (o.cpus) env.VM_CPUS = String(o.cpus);
  if (o.consoleLog) env.VM_CONSOLE_LOG = o.consoleLog;
  if (o.env) env.VM_ENV = Object.entries(o.env).map(([k, v]) => `${k}=${shq(String(v))}`).join(' ');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [RUN_IN_VM, cmd], { cwd: o.cwd ?? REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // belt and braces: the script has its own timeout; this one kills the whole process group
    const timer = setTimeout(() => {
      stderr += `\nrunInVm: killed after ${timeoutMs + 15_000} ms\n`;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutMs + 15_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 255 : 0), stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** where guest bundles go: inside node_modules so that their bare imports (koffi, lmdb...) resolve */
export const BUNDLE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'krsi-vm');

/**
 * Bundle a TypeScript entry point into one ESM file on the host (esbuild, tsx's own dependency).
 * Under TCG, `node --import tsx` costs 10-20 s of guest time before the first line runs; a bundle starts
 * like plain node. Packages stay external; each module keeps its own import.meta.url (so bpf/build.ts
 * still finds bpf/), by rewriting import.meta.url to the source file's URL.
 */
export async function bundleForVm(entry: string): Promise<string> {
  const req = createRequire(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx'));
  const esbuild = req('esbuild') as typeof import('esbuild');
  mkdirSync(BUNDLE_DIR, { recursive: true });
  const outfile = join(BUNDLE_DIR, `${basename(entry).replace(/\.ts$/, '')}.${process.pid}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'error',
    plugins: [{
      name: 'keep-import-meta-url',
      setup(b) {
        b.onLoad({ filter: /\.ts$/ }, (a) => ({
          contents: readFileSync(a.path, 'utf8').replace(/\bimport\.meta\.url\b/g, JSON.stringify(pathToFileURL(a.path).href)),
          loader: 'ts',
        }));
      },
    }],
  });
  return outfile;
}

/**
 * Run a TypeScript file in the guest: bundled on the host first (fast start), or with { tsx: true }
 * as `node --import tsx file args...`.
 */
export async function runTsInVm(file: string, args: string[] = [], o: VmOptions & { tsx?: boolean } = {}): Promise<VmResult> {
  if (o.tsx) return runInVm(['node', '--import', 'tsx', file, ...args].map(shq).join(' '), o);
  const bundle = await bundleForVm(file);
  try {
    return await runInVm(['node', bundle, ...args].map(shq).join(' '), o);
  } finally {
    rmSync(bundle, { force: true });
  }
}
