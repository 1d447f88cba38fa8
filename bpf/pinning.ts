// Pinning objects on bpffs and opening pins, each through the filesystem checks of bpf/pins.ts and,
// for a pin that is opened, the kernel's word on what it is (bpf/info.ts).
import { unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { BpfError, check } from './errors.ts';
import { objKind, type BpfObjKind } from './info.ts';
import { ensureBpffs } from './mounts.ts';
import { N } from './native.ts';
import { PinRefused, pinFileProblem, securePinDir } from './pins.ts';

export const PIN_ROOT = '/sys/fs/bpf/krsi';

/**
 * bpf_obj_get of the pin at path, once the pin itself checks out (bpf/pins.ts pinFileProblem: on bpffs,
 * not a symlink, root's) and the object is a `kind`; PinRefused otherwise, BpfError ENOENT when missing.
 * Returns the fd (close it with closeFd, or hand it to a BpfMap).
 */
export function openPin(path: string, kind: BpfObjKind): number {
  const why = pinFileProblem(path);
  if (why === 'missing') throw new BpfError(`bpf_obj_get ${path}`, 2);
  if (why) throw new PinRefused(`krsi: pin ${path} is not trusted: ${why}`);
  const fd = check(`bpf_obj_get ${path}`, N().bpf_obj_get(path));
  const k = objKind(fd);
  if (k !== kind) {
    N().close(fd);
    throw new PinRefused(`krsi: pin ${path} is not trusted: a ${k ?? 'non-BPF object'}, not a ${kind}`);
  }
  return fd;
}

/** pin an fd (map, link) at path; its directory is made root's only first (securePinDir) */
export function pinFd(fd: number, path: string, what = 'object'): void {
  ensureBpffs();
  securePinDir(dirname(path));
  check(`bpf_obj_pin ${what} at ${path}`, N().bpf_obj_pin(fd, path));
}

export function closeFd(fd: number): void {
  N().close(fd);
}

/** remove a pin (link or map) when it exists */
export function unpinPath(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}
