// Where a verdict goes in the kernel: the map and key its subject names, and the deadline the kernel
// checks. Keys built from a path (module files) use kernelFileId(): the {dev, ino} the LSM hooks see,
// which on overlayfs is not what stat() reports.
import type { Verdict } from '../engine/types.ts';
import type { KVerdict } from './maps.ts';
import type { ModuleResolver } from './module-files.ts';

/** the presence maps (module lists) and the verdict maps */
export type InodeMap = 'deny_inode' | 'module_allow' | 'module_deny';
/** a map key; dev is the user-space st_dev encoding (the writer converts to the kernel's) */
export type EntryKey = { map: 'deny_tgid'; tgid: number } | { map: InodeMap; dev: number; ino: number };
export interface Entry {
  key: EntryKey;
  value: KVerdict;
}

export function keyString(k: EntryKey): string {
  return k.map === 'deny_tgid' ? `deny_tgid:${k.tgid}` : `${k.map}:${k.dev}:${k.ino}`;
}

/** the map key one verdict asks for, or why it has none. Subject kinds:
 *   pid          -> deny_tgid[tgid]
 *   inode        -> deny_inode[dev, ino]  (exec of that binary)
 *   module_file  -> deny_inode[dev, ino]  (module load of that file)
 *   module name  -> deny_inode[the .ko's dev, ino] (SEMANTICS: the model's deny_module_name, resolved here) */
export function verdictKey(v: Verdict, modules: Pick<ModuleResolver, 'inode' | 'dir'>): EntryKey | { unresolved: string } {
  const s = v.subject;
  switch (s.kind) {
    case 'pid':
      return { map: 'deny_tgid', tgid: s.pid };
    case 'inode':
    case 'module_file':
      return { map: 'deny_inode', dev: s.dev, ino: s.ino };
    case 'module': {
      const f = modules.inode(s.name);
      return f ? { map: 'deny_inode', dev: f.dev, ino: f.ino } : { unresolved: `no .ko file for module ${s.name} under ${modules.dir}: nothing to deny` };
    }
  }
}

/** the kernel deadline of a verdict: live event ts are CLOCK_BOOTTIME ns already; a ts from another
 *  clock (in the future of this boot) gets now + ttl */
export function kernelDeadline(v: Verdict, bootNow: number): number {
  if (v.expires === 0 || v.ttl_ns === 0) return 0;
  if (v.ts > bootNow + 1e9) return bootNow + v.ttl_ns;
  return v.expires;
}
