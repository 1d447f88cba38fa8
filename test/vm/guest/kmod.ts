// Guest-side: the kernel package's module files, whichever way this kernel ships them (6.1: `.ko`;
// 6.12: `.ko.xz`, which busybox insmod cannot read and finit_module takes only with
// MODULE_INIT_COMPRESSED_FILE).
import { existsSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const modulesDir = () => process.env.KRSI_VM_MODULES!;

/** the module file as shipped: <modules>/kernel/<rel>.ko or .ko.xz (rel without the suffix, e.g. drivers/net/dummy) */
export function shippedModule(rel: string): string {
  const base = join(modulesDir(), 'kernel', rel);
  for (const f of [`${base}.ko`, `${base}.ko.xz`]) if (existsSync(f)) return f;
  throw new Error(`no module file for ${rel} under ${modulesDir()}`);
}

/** writes the module as a plain .ko at dest (decompressing a .ko.xz); returns dest */
export function plainModule(rel: string, dest: string): string {
  const f = shippedModule(rel);
  writeFileSync(dest, f.endsWith('.xz') ? execFileSync('xz', ['-dc', f], { maxBuffer: 1 << 28 }) : execFileSync('cat', [f], { maxBuffer: 1 << 28 }));
  return dest;
}

/** does this kernel ship compressed modules (and so decompress them in finit_module)? */
export function compressedModules(): boolean {
  return shippedModule('drivers/net/dummy').endsWith('.xz');
}
