// Pins only root can touch: the directories krsi pins into, and the pin files it reuses, checked on the
// filesystem before anything is pinned there or trusted from there (the kernel-side checks of a pin's
// object — type, name, attach point — are in bpf/info.ts and bpf/pinning.ts). A non-root user who can
// unlink a link pin detaches an LSM program; one who owns a pin directory can plant or remove pins in it.
import { chmodSync, lstatSync, mkdirSync, statfsSync, type Stats } from 'node:fs';
import { dirname, relative, sep } from 'node:path';
import { lstatOrUndefined } from '../lib/fsafe.ts';

export const BPFFS = '/sys/fs/bpf';
export const BPF_FS_MAGIC = 0xcafe4a11;

/** a pin directory or pin krsi must not use: the CLI exits 3 with the message */
export class PinRefused extends Error {
  readonly exitCode = 3;
  constructor(message: string) {
    super(message);
    this.name = 'PinRefused';
  }
}

const refuse = (p: string, why: string) =>
  new PinRefused(`krsi: refusing pin directory ${p}: ${why}; remove it (as root) and start krsi again`);

/** why a directory someone else could change is not krsi's to use, or undefined */
function dirProblem(st: Stats, owner: number): string | undefined {
  if (st.isSymbolicLink()) return 'it is a symlink';
  if (!st.isDirectory()) return 'not a directory';
  if (st.uid !== owner) return `owned by uid ${st.uid}, not ${owner}`;
  if (st.mode & 0o022) return `group/world writable (mode ${(st.mode & 0o7777).toString(8)})`;
  return undefined;
}

/**
 * Make `dir` (under `base`, the bpffs mount) a directory only `owner` (root) can change: each missing
 * component is created 0700; an existing one that is a symlink, owned by anyone else, or group/world
 * writable is refused (PinRefused), never used. `base` itself may be root's sticky 1777 bpffs root (no one
 * can rename or remove what root made there) but no other writable directory.
 */
export function securePinDir(dir: string, base = BPFFS, owner = process.geteuid?.() ?? 0): void {
  const rel = relative(base, dir);
  if (rel.startsWith('..') || rel.startsWith(sep)) throw new PinRefused(`krsi: pin directory ${dir} is not under ${base}`);
  const b = lstatSync(base);
  if (b.uid !== owner || ((b.mode & 0o022) && !(b.mode & 0o1000))) {
    throw refuse(base, `owned by uid ${b.uid} with mode ${(b.mode & 0o7777).toString(8)}`);
  }
  let p = base;
  for (const part of rel ? rel.split(sep) : []) {
    p = `${p}/${part}`;
    let made = false;
    try {
      mkdirSync(p, { mode: 0o700 });
      made = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const why = dirProblem(lstatSync(p), owner);
    if (why) throw refuse(p, why);
    if (made) chmodSync(p, 0o700); // mkdir's mode went through the umask
  }
}

/**
 * Why the pin at `path` must not be trusted (a symlink, not a bpffs object, someone else's, writable by
 * others), or
 * undefined; 'missing' when there is nothing there. Its directory is checked by securePinDir.
 */
export function pinFileProblem(path: string, owner = process.geteuid?.() ?? 0): string | undefined {
  let st: Stats | undefined;
  try {
    st = lstatOrUndefined(path);
  } catch (e) {
    return `cannot be checked (${(e as NodeJS.ErrnoException).code})`; // not root: the directory is 0700
  }
  if (!st) return 'missing';
  if (st.isSymbolicLink()) return 'a symlink, not a pin';
  if (!st.isFile()) return 'not a pin (a directory or special file)';
  if (st.uid !== owner) return `owned by uid ${st.uid}`;
  if (st.mode & 0o022) return `group/world writable (mode ${(st.mode & 0o7777).toString(8)})`;
  if (statfsSync(dirname(path)).type !== BPF_FS_MAGIC) return 'not on bpffs';
  return undefined;
}
