// inInodeList / notInInodeList: the value names a list of absolute paths, which krsi resolves to this host's
// (dev, ino) with stat(2) when the rules load; the fact is a file id ({dev, ino}: exe, target, file) and is
// in the list when it is one of those inodes. Unlike a path, an inode cannot be borrowed: a bind mount over
// /usr/bin/dpkg, or a container's own /usr/bin/dpkg, is another inode. When a fact misses, the paths are
// resolved again (at most once a second, wall clock): a package manager that upgraded itself has a new
// inode, and its old one stays in the set (the upgrading process still runs it). Paths are resolved on the
// host that evaluates: a replay elsewhere matches that host's inodes (rules/README.md).
import { kernelFileId } from '../../bpf/file-id.ts';
import { badValue, defineOperator, type OperatorContext, type ValueProblem } from './types.ts';

/** inodes kept per path at most (old ones stay: a process may still run an upgraded binary) */
const KEEP_PER_PATH = 4;
const RESOLVE_EVERY_MS = 1000;

/** the host inodes of a list of paths */
export class InodeSet {
  private readonly keys = new Set<string>();
  private readonly byPath = new Map<string, string[]>();
  private last = 0;
  constructor(readonly paths: readonly string[]) {
    this.resolve();
  }

  /** stat every path again; a new inode is added, the oldest beyond KEEP_PER_PATH dropped */
  resolve(): void {
    this.last = Date.now();
    for (const p of this.paths) {
      let k: string;
      try {
        // as the hooks see it (overlayfs, btrfs subvolumes: not stat()'s device)
        const st = kernelFileId(p);
        k = `${st.dev}:${st.ino}`;
      } catch {
        continue; // not on this host (another distribution's package manager)
      }
      const seen = this.byPath.get(p) ?? [];
      if (seen.includes(k)) continue;
      seen.push(k);
      this.keys.add(k);
      if (seen.length > KEEP_PER_PATH) this.keys.delete(seen.shift()!);
      this.byPath.set(p, seen);
    }
  }

  /** the resolved inodes, "dev:ino" (user-space st_dev) */
  inodes(): string[] {
    return [...this.keys];
  }

  has(a: unknown): boolean {
    if (typeof a !== 'object' || a === null) return false;
    const { dev, ino } = a as { dev?: unknown; ino?: unknown };
    if (typeof dev !== 'number' || typeof ino !== 'number') return false;
    const k = `${dev}:${ino}`;
    if (this.keys.has(k)) return true;
    if (Date.now() - this.last < RESOLVE_EVERY_MS) return false;
    this.resolve();
    return this.keys.has(k);
  }
}

const sets = new WeakMap<Set<string | number>, InodeSet>();

/** the InodeSet of the named list (one per list, shared by every condition naming it), or null */
export function resolveInodeList(v: unknown, ctx: OperatorContext): InodeSet | null {
  if (typeof v !== 'string' || !Object.hasOwn(ctx.lists, v)) return null;
  const list = ctx.lists[v];
  let s = sets.get(list);
  if (!s) {
    s = new InodeSet([...list].filter((p): p is string => typeof p === 'string'));
    sets.set(list, s);
  }
  return s;
}

/** the value names a list whose every value is an absolute path */
export function checkInodeList(v: unknown, ctx: OperatorContext): ValueProblem | undefined {
  if (typeof v !== 'string') return badValue('the value must be the name of a list of absolute paths');
  if (!Object.hasOwn(ctx.lists, v)) return { code: 'UNKNOWN_LIST', message: v };
  for (const p of ctx.lists[v]) {
    if (typeof p !== 'string' || !p.startsWith('/')) return badValue(`list ${v}: ${JSON.stringify(p)} is not an absolute path (inode lists hold paths resolved on this host)`);
  }
  return undefined;
}

export const inInodeList = defineOperator<InodeSet | null>({
  name: 'inInodeList',
  doc: 'b names a list of paths; a ({dev, ino}) is the inode one of them has on this host',
  checkValue: checkInodeList,
  prepare: resolveInodeList,
  test: (a, s) => s !== null && s.has(a),
});

export const notInInodeList = defineOperator<InodeSet | null>({
  name: 'notInInodeList',
  doc: 'b names a list of paths; a ({dev, ino}) is not the inode of any of them on this host',
  checkValue: checkInodeList,
  prepare: resolveInodeList,
  test: (a, s) => s !== null && !s.has(a),
});
