// A BPF map at the fd level: a map of a loaded BpfObject, one opened from its pin, or one created
// directly; lookups, updates, deletes, key walks and pins.
import { BpfError, check } from './errors.ts';
import { mapInfo } from './info.ts';
import { N, requireLiveBpf } from './native.ts';
import { PIN_ROOT, openPin, pinFd, unpinPath } from './pinning.ts';

const PERCPU_TYPES = new Set([5, 6, 10, 21]); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE
export const BPF_MAP_TYPE_RINGBUF = 27;
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

/** a BPF map at the fd level: a map of a loaded BpfObject, or one opened from its pin */
export class BpfMap {
  readonly fd: number;
  /** the kernel's id of the map (what a program's map_ids name) */
  readonly id: number;
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  /** per-element value size; lookups of per-CPU maps return valueSize rounded to 8 x possible CPUs */
  readonly valueSize: number;
  readonly maxEntries: number;
  private readonly owned: boolean;
  private pinnedAt: string | undefined;
  private closed = false;

  /** @internal use BpfObject.map() or BpfMap.fromPinned() */
  constructor(fd: number, owned: boolean, pinnedAt?: string) {
    const info = mapInfo(fd);
    this.fd = fd;
    this.id = info.id;
    this.owned = owned;
    this.pinnedAt = pinnedAt;
    this.name = info.name;
    this.type = info.type;
    this.keySize = info.keySize;
    this.valueSize = info.valueSize;
    this.maxEntries = info.maxEntries;
  }

  /** open a pinned map (bpf_obj_get) once the pin checks out (openPin: root's, on bpffs, not a symlink,
   *  a map); close() it when done */
  static fromPinned(path: string): BpfMap {
    requireLiveBpf();
    const fd = openPin(path, 'map');
    try {
      return new BpfMap(fd, true, path);
    } catch (e) {
      N().close(fd);
      throw e;
    }
  }

  /** bytes a lookup returns: valueSize, or one 8-aligned slot per possible CPU for per-CPU maps */
  get valueBufferSize(): number {
    if (!PERCPU_TYPES.has(this.type)) return this.valueSize;
    return ((this.valueSize + 7) & ~7) * N().libbpf_num_possible_cpus();
  }

  get pinPath(): string | undefined {
    return this.pinnedAt;
  }

  /** pin at path (parent directories created); with no path, under PIN_ROOT by map name */
  pin(path: string = `${PIN_ROOT}/${this.name}`): void {
    pinFd(this.fd, path, `map ${this.name}`);
    this.pinnedAt = path;
  }

  /** remove the pin (the map lives on while something else holds it) */
  unpin(): void {
    if (!this.pinnedAt) return;
    unpinPath(this.pinnedAt);
    this.pinnedAt = undefined;
  }

  private checkKey(k: Buffer): void {
    this.open();
    if (k.length !== this.keySize) throw new BpfError(`map ${this.name}: key of ${k.length} bytes`, 22, `key size is ${this.keySize}`);
  }

  update(k: Buffer, v: Buffer, flags = BPF_ANY): void {
    this.checkKey(k);
    if (v.length !== this.valueBufferSize) throw new BpfError(`map ${this.name}: value of ${v.length} bytes`, 22, `value size is ${this.valueBufferSize}`);
    check(`bpf_map_update_elem ${this.name}`, N().bpf_map_update_elem(this.fd, k, v, flags));
  }

  lookup(k: Buffer): Buffer | undefined {
    this.checkKey(k);
    const v = Buffer.alloc(this.valueBufferSize);
    const r = N().bpf_map_lookup_elem(this.fd, k, v) as number;
    if (r === -2) return undefined; // ENOENT
    check(`bpf_map_lookup_elem ${this.name}`, r);
    return v;
  }

  /** true when the key was there */
  delete(k: Buffer): boolean {
    this.checkKey(k);
    const r = N().bpf_map_delete_elem(this.fd, k) as number;
    if (r === -2) return false;
    check(`bpf_map_delete_elem ${this.name}`, r);
    return true;
  }

  /** a closed map's fd number may belong to another file by now: refuse to use it */
  private open(): void {
    if (this.closed) throw new BpfError(`map ${this.name}: used after close`, 9, 'its fd is closed');
  }

  *keys(): Iterable<Buffer> {
    this.open();
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const r = N().bpf_map_get_next_key(this.fd, prev, next) as number;
      if (r === -2) return;
      check(`bpf_map_get_next_key ${this.name}`, r);
      yield next;
      prev = next;
    }
  }

  /** pin again at the last pin path (a pin someone removed while krsi holds the map) */
  repin(): void {
    if (this.pinnedAt) pinFd(this.fd, this.pinnedAt, `map ${this.name}`);
  }

  /** close the fd of a map opened with fromPinned (maps of a BpfObject close with it) */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) N().close(this.fd);
  }
}

/** create a map directly (probes, tests) */
export function createMap(type: number, name: string, keySize: number, valueSize: number, maxEntries: number): BpfMap {
  requireLiveBpf();
  const fd = check(`bpf_map_create ${name}`, N().bpf_map_create(type, name, keySize, valueSize, maxEntries, null));
  return new BpfMap(fd, true);
}
