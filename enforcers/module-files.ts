// Kernel module names -> their .ko files under /lib/modules/$(uname -r): the kernel identifies a
// module by its file's inode (module verdicts, module_allow, module_deny), rules name it.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { kernelFileId } from './maps.ts';

export class ModuleResolver {
  private index?: Map<string, string>;
  constructor(readonly dir = process.env.KRSI_MODULES_DIR ?? join('/lib/modules', release())) {}

  static normalize(name: string): string {
    return name.replace(/-/g, '_');
  }

  /** the module's file path, or undefined when this kernel has no such module file */
  path(name: string): string | undefined {
    if (!this.index) {
      this.index = new Map();
      const walk = (d: string): void => {
        let names: string[];
        try { names = readdirSync(d); } catch { return; }
        for (const n of names) {
          const p = join(d, n);
          const m = /^(.+)\.ko(\.xz|\.zst|\.gz)?$/.exec(n);
          if (m) this.index!.set(ModuleResolver.normalize(m[1]), p);
          else if (!n.includes('.')) { try { if (statSync(p).isDirectory()) walk(p); } catch { /* vanished */ } }
        }
      };
      walk(this.dir);
    }
    return this.index.get(ModuleResolver.normalize(name));
  }

  /** the module file's {dev, ino} as the kernel_read_file hook sees it (kernelFileId: right on overlayfs too),
   *  and its ctime now (ns): the kernel refuses the file once its ctime differs (rewritten in place) */
  inode(name: string): { dev: number; ino: number; path: string; ctimeNs: bigint } | undefined {
    const p = this.path(name);
    if (!p) return undefined;
    return { ...kernelFileId(p), path: p, ctimeNs: statSync(p, { bigint: true }).ctimeNs };
  }
}
