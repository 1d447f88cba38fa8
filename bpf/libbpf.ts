// libbpf through koffi: the only module of krsi that talks to libbpf (Debian's libbpf.so.1).
// BpfObject (open, globals, autoload, load, attach, pin links), BpfMap (fd-level map ops, pins),
// RingBuffer (drained from the Node event loop by reading the mmapped ring in JS), BpfError.
import koffi from 'koffi';
import { existsSync, mkdirSync, readFileSync, readlinkSync, realpathSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { childLogger } from '../lib/log.ts';
import { BPFFS, PinRefused, pinFileProblem, securePinDir } from './pins.ts';

const log = childLogger('libbpf');

export const PIN_ROOT = '/sys/fs/bpf/krsi';
export const LIBBPF_PATHS = [
  '/usr/lib/x86_64-linux-gnu/libbpf.so.1',
  '/usr/lib/aarch64-linux-gnu/libbpf.so.1',
  '/usr/lib64/libbpf.so.1',
  '/usr/lib/libbpf.so.1',
];

/** a failed libbpf / bpf() operation: errno and libbpf_strerror text */
export class BpfError extends Error {
  readonly errno: number;
  readonly op: string;
  constructor(op: string, errno: number, detail?: string) {
    errno = Math.abs(errno);
    super(`${op}: ${strerror(errno)}${detail ? ` (${detail})` : ''}`);
    this.name = 'BpfError';
    this.errno = errno;
    this.op = op;
  }
}

/** a missing prerequisite (root, libbpf.so.1): the CLI exits 3 with this message */
export class BpfPrereqError extends Error {
  readonly exitCode = 3;
  constructor(message: string) {
    super(message);
    this.name = 'BpfPrereqError';
  }
}

// ---- the native libraries, bound lazily so that importing this module never fails ----

type Ptr = bigint;
type Fn = ((...args: any[]) => any) & { async: (...args: any[]) => void };

interface Native {
  path: string;
  // libbpf
  libbpf_strerror: Fn; libbpf_set_print: Fn; libbpf_num_possible_cpus: Fn;
  bpf_object__open_file: Fn; bpf_object__load: Fn; bpf_object__close: Fn; bpf_object__btf: Fn;
  bpf_object__find_map_by_name: Fn; bpf_object__find_program_by_name: Fn;
  bpf_object__next_map: Fn; bpf_object__next_program: Fn;
  bpf_map__fd: Fn; bpf_map__name: Fn; bpf_map__set_max_entries: Fn; bpf_map__initial_value: Fn;
  bpf_map__is_internal: Fn; bpf_map__set_pin_path: Fn;
  bpf_map__type: Fn; bpf_map__key_size: Fn; bpf_map__value_size: Fn; bpf_map__max_entries: Fn;
  bpf_program__type: Fn; bpf_program__section_name: Fn; bpf_prog_get_fd_by_id: Fn; btf__load_vmlinux_btf: Fn;
  bpf_program__name: Fn; bpf_program__autoload: Fn; bpf_program__set_autoload: Fn; bpf_program__attach: Fn;
  bpf_link__pin: Fn; bpf_link__destroy: Fn;
  btf__find_by_name_kind: Fn; btf__type_by_id: Fn; btf__name_by_offset: Fn;
  bpf_map_create: Fn; bpf_map_update_elem: Fn; bpf_map_lookup_elem: Fn; bpf_map_delete_elem: Fn;
  bpf_map_get_next_key: Fn; bpf_obj_pin: Fn; bpf_obj_get: Fn; bpf_obj_get_info_by_fd: Fn;
  ring_buffer__new: Fn; ring_buffer__add: Fn; ring_buffer__consume: Fn; ring_buffer__epoll_fd: Fn; ring_buffer__free: Fn;
  // libc
  close: Fn; getpagesize: Fn; mmap: Fn; munmap: Fn; mount: Fn; vsnprintf: Fn;
}

let native: Native | undefined;
let printCb: bigint | undefined;
let quietDepth = 0;

/** where libbpf.so.1 is (KRSI_LIBBPF overrides the search), or undefined */
export function libbpfPath(): string | undefined {
  const paths = process.env.KRSI_LIBBPF ? [process.env.KRSI_LIBBPF] : LIBBPF_PATHS;
  return paths.find((p) => existsSync(p));
}

/** the libbpf version from the library's real file name (libbpf.so.1.1.2 -> 1.1.2) */
export function libbpfVersion(): string | undefined {
  const p = libbpfPath();
  if (!p) return undefined;
  try {
    return realpathSync(p).match(/libbpf\.so\.(\d+(?:\.\d+)*)$/)?.[1];
  } catch {
    return undefined;
  }
}

/** throws BpfPrereqError unless root and libbpf.so.1 are there */
export function requireLiveBpf(): void {
  if (process.getuid?.() !== 0) throw new BpfPrereqError('krsi: needs root (CAP_BPF, CAP_PERFMON)');
  if (!libbpfPath()) throw new BpfPrereqError('krsi: libbpf.so.1 not found: install the Debian package libbpf1 (apt-get install libbpf1)');
}

function N(): Native {
  if (native) return native;
  const path = libbpfPath();
  if (!path) throw new BpfPrereqError('krsi: libbpf.so.1 not found: install the Debian package libbpf1 (apt-get install libbpf1)');
  const bpf = koffi.load(path);
  const libc = koffi.load('libc.so.6');
  const f = (l: typeof bpf, decl: string) => l.func(decl) as unknown as Fn;
  koffi.opaque('bpf_object');
  koffi.opaque('bpf_map');
  koffi.opaque('bpf_program');
  koffi.opaque('bpf_link');
  koffi.opaque('btf');
  const n: Native = {
    path,
    libbpf_strerror: f(bpf, 'int libbpf_strerror(int err, _Out_ char *buf, size_t size)'),
    libbpf_set_print: f(bpf, 'void *libbpf_set_print(void *fn)'),
    libbpf_num_possible_cpus: f(bpf, 'int libbpf_num_possible_cpus()'),
    bpf_object__open_file: f(bpf, 'bpf_object *bpf_object__open_file(const char *path, void *opts)'),
    bpf_object__load: f(bpf, 'int bpf_object__load(bpf_object *obj)'),
    bpf_object__close: f(bpf, 'void bpf_object__close(bpf_object *obj)'),
    bpf_object__btf: f(bpf, 'btf *bpf_object__btf(bpf_object *obj)'),
    bpf_object__find_map_by_name: f(bpf, 'bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
    bpf_object__find_program_by_name: f(bpf, 'bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
    bpf_object__next_map: f(bpf, 'bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *map)'),
    bpf_object__next_program: f(bpf, 'bpf_program *bpf_object__next_program(bpf_object *obj, bpf_program *prog)'),
    bpf_map__fd: f(bpf, 'int bpf_map__fd(bpf_map *map)'),
    bpf_map__name: f(bpf, 'const char *bpf_map__name(bpf_map *map)'),
    bpf_map__set_max_entries: f(bpf, 'int bpf_map__set_max_entries(bpf_map *map, uint32_t n)'),
    bpf_map__initial_value: f(bpf, 'void *bpf_map__initial_value(bpf_map *map, _Out_ size_t *psize)'),
    bpf_map__is_internal: f(bpf, 'bool bpf_map__is_internal(bpf_map *map)'),
    bpf_map__set_pin_path: f(bpf, 'int bpf_map__set_pin_path(bpf_map *map, const char *path)'),
    bpf_map__type: f(bpf, 'int bpf_map__type(bpf_map *map)'),
    bpf_map__key_size: f(bpf, 'uint32_t bpf_map__key_size(bpf_map *map)'),
    bpf_map__value_size: f(bpf, 'uint32_t bpf_map__value_size(bpf_map *map)'),
    bpf_map__max_entries: f(bpf, 'uint32_t bpf_map__max_entries(bpf_map *map)'),
    bpf_program__type: f(bpf, 'int bpf_program__type(bpf_program *prog)'),
    bpf_program__section_name: f(bpf, 'const char *bpf_program__section_name(bpf_program *prog)'),
    bpf_prog_get_fd_by_id: f(bpf, 'int bpf_prog_get_fd_by_id(uint32_t id)'),
    btf__load_vmlinux_btf: f(bpf, 'btf *btf__load_vmlinux_btf()'),
    bpf_program__name: f(bpf, 'const char *bpf_program__name(bpf_program *prog)'),
    bpf_program__autoload: f(bpf, 'bool bpf_program__autoload(bpf_program *prog)'),
    bpf_program__set_autoload: f(bpf, 'int bpf_program__set_autoload(bpf_program *prog, bool on)'),
    bpf_program__attach: f(bpf, 'bpf_link *bpf_program__attach(bpf_program *prog)'),
    bpf_link__pin: f(bpf, 'int bpf_link__pin(bpf_link *link, const char *path)'),
    bpf_link__destroy: f(bpf, 'int bpf_link__destroy(bpf_link *link)'),
    btf__find_by_name_kind: f(bpf, 'int32_t btf__find_by_name_kind(btf *btf, const char *name, uint32_t kind)'),
    btf__type_by_id: f(bpf, 'void *btf__type_by_id(btf *btf, uint32_t id)'),
    btf__name_by_offset: f(bpf, 'const char *btf__name_by_offset(btf *btf, uint32_t off)'),
    bpf_map_create: f(bpf, 'int bpf_map_create(int type, const char *name, uint32_t ksize, uint32_t vsize, uint32_t max, void *opts)'),
    bpf_map_update_elem: f(bpf, 'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    bpf_map_lookup_elem: f(bpf, 'int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    bpf_map_delete_elem: f(bpf, 'int bpf_map_delete_elem(int fd, const void *key)'),
    bpf_map_get_next_key: f(bpf, 'int bpf_map_get_next_key(int fd, const void *key, void *next)'),
    bpf_obj_pin: f(bpf, 'int bpf_obj_pin(int fd, const char *path)'),
    bpf_obj_get: f(bpf, 'int bpf_obj_get(const char *path)'),
    bpf_obj_get_info_by_fd: f(bpf, 'int bpf_obj_get_info_by_fd(int fd, void *info, _Inout_ uint32_t *len)'),
    ring_buffer__new: f(bpf, 'void *ring_buffer__new(int fd, void *cb, void *ctx, void *opts)'),
    ring_buffer__add: f(bpf, 'int ring_buffer__add(void *rb, int fd, void *cb, void *ctx)'),
    ring_buffer__consume: f(bpf, 'int ring_buffer__consume(void *rb)'),
    ring_buffer__epoll_fd: f(bpf, 'int ring_buffer__epoll_fd(void *rb)'),
    ring_buffer__free: f(bpf, 'void ring_buffer__free(void *rb)'),
    close: f(libc, 'int close(int fd)'),
    getpagesize: f(libc, 'int getpagesize()'),
    mmap: f(libc, 'void *mmap(void *addr, size_t len, int prot, int flags, int fd, int64_t off)'),
    munmap: f(libc, 'int munmap(void *addr, size_t len)'),
    mount: f(libc, 'int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const void *data)'),
    vsnprintf: f(libc, 'int vsnprintf(void *buf, size_t size, const char *fmt, void *ap)'),
  };
  native = n;
  installPrint(n);
  return n;
}

// ---- libbpf's log into krsi's logger ----

// KRSI_LIBBPF_PRINT_BUF (bytes) is a test hook: a tiny buffer exercises the re-format path
const printBuf = Buffer.alloc(Number(process.env.KRSI_LIBBPF_PRINT_BUF) || 64 * 1024);
const MAX_LINES = 1200; // a verifier log can run to megabytes: keep its head and its tail (where the error is)

function installPrint(n: Native): void {
  // va_list decays to a pointer when passed: hand it to vsnprintf as is
  const PrintFn = koffi.proto('int krsi_libbpf_print(int level, const char *fmt, void *ap)');
  printCb = koffi.register((level: number, fmt: string, ap: bigint) => {
    const lvl = quietDepth > 0 ? 'debug' : level === 0 ? 'warn' : level === 1 ? 'info' : 'debug';
    if (!log.isLevelEnabled(lvl)) return 0;
    // va_copy by hand (x86-64: a 24-byte struct) so a message longer than printBuf can be formatted again
    const apCopy = process.arch === 'x64' ? Buffer.from(new Uint8Array(koffi.view(ap, 24))) : undefined;
    let out = printBuf;
    let len = n.vsnprintf(out, out.length, fmt, ap) as number;
    if (len >= out.length && apCopy) {
      out = Buffer.alloc(len + 1);
      len = n.vsnprintf(out, out.length, fmt, apCopy) as number;
    }
    const text = out.toString('utf8', 0, Math.max(0, Math.min(len, out.length - 1))).replace(/\n+$/, '');
    let lines = text.split('\n');
    if (lines.length > MAX_LINES) {
      const head = lines.slice(0, 200);
      const tail = lines.slice(-(MAX_LINES - 200));
      lines = [...head, `... ${lines.length - head.length - tail.length} lines omitted ...`, ...tail];
    }
    for (const line of lines) log[lvl](line.replace(/^libbpf: /, ''));
    return 0;
  }, koffi.pointer(PrintFn));
  n.libbpf_set_print(printCb);
}

/** run fn with libbpf's warnings demoted to debug (probes that are expected to fail) */
export function quietly<T>(fn: () => T): T {
  quietDepth++;
  try {
    return fn();
  } finally {
    quietDepth--;
  }
}

function strerror(errno: number): string {
  const buf = Buffer.alloc(256);
  try {
    const n = N();
    if (n.libbpf_strerror(errno, buf, buf.length) === 0 || buf[0]) return cstr(buf);
  } catch {
    // no libbpf: fall through
  }
  const name = Object.entries(koffi.os.errno).find(([, v]) => v === errno)?.[0];
  return name ? `${name} (errno ${errno})` : `errno ${errno}`;
}

function cstr(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

function check(op: string, ret: number, detail?: string): number {
  if (ret < 0) throw new BpfError(op, -ret, detail);
  return ret;
}

function nonNull<T>(op: string, p: T | null, detail?: string): T {
  if (p === null || p === undefined || p === 0n) throw new BpfError(op, koffi.errno() || 22, detail);
  return p;
}

// ---- filesystems ----

function mountedAt(target: string, fstype: string): boolean {
  try {
    return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => {
      const f = l.split(' ');
      return f[1] === target && f[2] === fstype;
    });
  } catch {
    return false;
  }
}

function mountFs(fstype: string, target: string, data: string | null = null): void {
  if (mountedAt(target, fstype)) return;
  mkdirSync(target, { recursive: true });
  const r = N().mount(fstype, target, fstype, 0, data) as number;
  if (r !== 0) throw new BpfError(`mount ${fstype} at ${target}`, koffi.errno());
  log.info({ fstype, target }, 'mounted');
}

/** mount bpffs at /sys/fs/bpf when missing, 0700 (bpffs defaults to a world-writable 1777 root); pins
 *  create their own directories under PIN_ROOT (securePinDir), so nothing is left behind on a host where
 *  nothing gets pinned */
export function ensureBpffs(): void {
  mountFs('bpf', BPFFS, 'mode=0700');
}

/** mount tracefs at /sys/kernel/tracing when missing (libbpf attaches tp/ programs through it) */
export function ensureTracefs(): void {
  if (existsSync('/sys/kernel/tracing/events')) return;
  mountFs('tracefs', '/sys/kernel/tracing');
}

/** mount securityfs at /sys/kernel/security when missing (for /sys/kernel/security/lsm) */
export function ensureSecurityfs(): void {
  if (existsSync('/sys/kernel/security/lsm')) return;
  mountFs('securityfs', '/sys/kernel/security');
}

// ---- maps ----

const PERCPU_TYPES = new Set([5, 6, 10, 21]); // PERCPU_HASH, PERCPU_ARRAY, LRU_PERCPU_HASH, PERCPU_CGROUP_STORAGE
export const BPF_MAP_TYPE_RINGBUF = 27;
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;

export interface MapInfo {
  type: number;
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags: number;
  name: string;
}

export function mapInfo(fd: number): MapInfo {
  const buf = Buffer.alloc(88);
  const len = [buf.length];
  check('bpf_obj_get_info_by_fd', N().bpf_obj_get_info_by_fd(fd, buf, len));
  return {
    type: buf.readUInt32LE(0), id: buf.readUInt32LE(4), keySize: buf.readUInt32LE(8), valueSize: buf.readUInt32LE(12),
    maxEntries: buf.readUInt32LE(16), flags: buf.readUInt32LE(20), name: cstr(buf.subarray(24, 40)),
  };
}

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

  *keys(): Iterable<Buffer> {
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

// ---- pins and object info: what a pinned object is, asked of the kernel before it is trusted ----

export type BpfObjKind = 'map' | 'prog' | 'link';

/** the kind of BPF object behind an fd (its anon inode: bpf-map, bpf-prog, bpf_link), or undefined */
export function objKind(fd: number): BpfObjKind | undefined {
  return /^anon_inode:bpf[-_](map|prog|link)$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] as BpfObjKind | undefined;
}

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

export interface ProgInfo {
  type: number;
  id: number;
  /** at most 15 characters (BPF_OBJ_NAME_LEN) */
  name: string;
  /** ids of the maps the program uses */
  mapIds: number[];
}

/** struct bpf_prog_info of a program fd: type, id, name, map ids */
export function progInfo(fd: number): ProgInfo {
  for (let room = 64; ; room *= 4) {
    const buf = Buffer.alloc(232);
    const ids = Buffer.alloc(room * 4);
    buf.writeUInt32LE(room, 52); // nr_map_ids, in/out
    buf.writeBigUInt64LE(koffi.address(ids), 56); // map_ids
    check('bpf_obj_get_info_by_fd (prog)', N().bpf_obj_get_info_by_fd(fd, buf, [buf.length]));
    const n = buf.readUInt32LE(52);
    if (n > room) continue;
    return {
      type: buf.readUInt32LE(0), id: buf.readUInt32LE(4), name: cstr(buf.subarray(64, 80)),
      mapIds: Array.from({ length: n }, (_, i) => ids.readUInt32LE(i * 4)),
    };
  }
}

/** the program with this id, as a ProgInfo (bpf_prog_get_fd_by_id) */
export function progInfoById(id: number): ProgInfo {
  const fd = check(`bpf_prog_get_fd_by_id ${id}`, N().bpf_prog_get_fd_by_id(id));
  try {
    return progInfo(fd);
  } finally {
    N().close(fd);
  }
}

export interface LinkInfo {
  id: number;
  /** enum bpf_link_type (1 raw tracepoint, 2 tracing) */
  type: number;
  progId: number;
  /** where it attaches, in libbpf's section syntax ('lsm/bprm_check_security', 'tp_btf/sched_process_exit'),
   *  for raw tracepoint and tracing links; undefined for other link types */
  target?: string;
}

const BPF_LINK_TYPE_RAW_TRACEPOINT = 1;
const BPF_LINK_TYPE_TRACING = 2;
const BPF_PROG_TYPE_RAW_TRACEPOINT = 17;
const TRACING_ATTACH: Record<number, string> = { 24: 'fentry', 25: 'fexit', 26: 'fmod_ret', 27: 'lsm' }; // enum bpf_attach_type
let vmlinuxBtf: Ptr | null | undefined;

/** the name of a type id in the running kernel's BTF */
function kernelTypeName(id: number): string | undefined {
  const n = N();
  if (vmlinuxBtf === undefined) vmlinuxBtf = (n.btf__load_vmlinux_btf() as Ptr | null) || null;
  if (!vmlinuxBtf) return undefined;
  const t = n.btf__type_by_id(vmlinuxBtf, id) as Ptr | null;
  return t ? (n.btf__name_by_offset(vmlinuxBtf, Buffer.from(koffi.view(t, 4)).readUInt32LE(0)) as string) : undefined;
}

/** struct bpf_link_info of a link fd, with its attach point resolved (the tracepoint's name, or the
 *  kernel function behind target_btf_id) */
export function linkInfo(fd: number): LinkInfo {
  // first with the union zeroed (other link types read buffer pointers from it), then for a raw
  // tracepoint again with a buffer for its name
  let buf = Buffer.alloc(48);
  check('bpf_obj_get_info_by_fd (link)', N().bpf_obj_get_info_by_fd(fd, buf, [buf.length]));
  const info: LinkInfo = { type: buf.readUInt32LE(0), id: buf.readUInt32LE(4), progId: buf.readUInt32LE(8) };
  if (info.type === BPF_LINK_TYPE_RAW_TRACEPOINT) {
    const tp = Buffer.alloc(128);
    buf = Buffer.alloc(48);
    buf.writeBigUInt64LE(koffi.address(tp), 16); // raw_tracepoint.tp_name
    buf.writeUInt32LE(tp.length, 24);
    check('bpf_obj_get_info_by_fd (link)', N().bpf_obj_get_info_by_fd(fd, buf, [buf.length]));
    const prog = progInfoById(info.progId);
    info.target = `${prog.type === BPF_PROG_TYPE_RAW_TRACEPOINT ? 'raw_tp' : 'tp_btf'}/${cstr(tp)}`;
  } else if (info.type === BPF_LINK_TYPE_TRACING) {
    const kind = TRACING_ATTACH[buf.readUInt32LE(16)] ?? `attach${buf.readUInt32LE(16)}`;
    const fn = kernelTypeName(buf.readUInt32LE(24)) ?? `btf_id ${buf.readUInt32LE(24)}`;
    info.target = `${kind}/${kind === 'lsm' ? fn.replace(/^bpf_lsm_/, '') : fn}`;
  }
  return info;
}

// ---- objects ----

const BTF_KIND_DATASEC = 15;

interface GlobalVar {
  map: Ptr;
  section: string;
  offset: number;
  size: number;
}

/** a BPF ELF object: open -> set globals / autoload / map pins -> load -> attach -> close */
export class BpfObject {
  readonly path: string;
  private obj: Ptr | null;
  private loaded = false;
  private readonly links = new Map<string, Ptr[]>();
  private readonly maps = new Map<string, BpfMap>();
  private globalsCache: Map<string, GlobalVar> | undefined;

  private constructor(path: string, obj: Ptr) {
    this.path = path;
    this.obj = obj;
  }

  static open(path: string): BpfObject {
    requireLiveBpf();
    if (!existsSync(path)) throw new BpfError(`bpf_object__open_file ${path}`, 2);
    const obj = nonNull(`bpf_object__open_file ${path}`, N().bpf_object__open_file(path, null) as Ptr | null);
    return new BpfObject(path, obj);
  }

  private get o(): Ptr {
    if (this.obj === null) throw new Error(`BpfObject ${this.path} is closed`);
    return this.obj;
  }

  private mapPtr(name: string): Ptr {
    return nonNull(`map ${name} in ${this.path}`, N().bpf_object__find_map_by_name(this.o, name) as Ptr | null, 'no such map');
  }

  private progPtr(name: string): Ptr {
    return nonNull(`program ${name} in ${this.path}`, N().bpf_object__find_program_by_name(this.o, name) as Ptr | null, 'no such program');
  }

  /** a map as the object defines it (valid before load): what a pinned map must match */
  mapSpec(name: string): { name: string; type: number; keySize: number; valueSize: number; maxEntries: number } {
    const n = N();
    const m = this.mapPtr(name);
    return {
      name: n.bpf_map__name(m) as string, type: n.bpf_map__type(m) as number, keySize: n.bpf_map__key_size(m) as number,
      valueSize: n.bpf_map__value_size(m) as number, maxEntries: n.bpf_map__max_entries(m) as number,
    };
  }

  /** a program as the object defines it: its type and section ('lsm/bprm_check_security'), what a pinned
   *  link's program and attach point (LinkInfo.target) must match */
  progSpec(name: string): { name: string; type: number; section: string } {
    const n = N();
    const p = this.progPtr(name);
    return { name, type: n.bpf_program__type(p) as number, section: n.bpf_program__section_name(p) as string };
  }

  /** names of every program in the object */
  programs(): string[] {
    const out: string[] = [];
    for (let p = N().bpf_object__next_program(this.o, null) as Ptr | null; p; p = N().bpf_object__next_program(this.o, p) as Ptr | null) {
      out.push(N().bpf_program__name(p) as string);
    }
    return out;
  }

  /** names of every map in the object (internal ones like x.rodata included) */
  mapNames(): string[] {
    const out: string[] = [];
    for (let m = N().bpf_object__next_map(this.o, null) as Ptr | null; m; m = N().bpf_object__next_map(this.o, m) as Ptr | null) {
      out.push(N().bpf_map__name(m) as string);
    }
    return out;
  }

  // every variable of .rodata/.bss/.data (and their .name variants), from the datasecs of the object's BTF
  private globals(): Map<string, GlobalVar> {
    if (this.globalsCache) return this.globalsCache;
    const n = N();
    const out = new Map<string, GlobalVar>();
    const btf = n.bpf_object__btf(this.o) as Ptr | null;
    for (let m = n.bpf_object__next_map(this.o, null) as Ptr | null; m && btf; m = n.bpf_object__next_map(this.o, m) as Ptr | null) {
      if (!n.bpf_map__is_internal(m)) continue;
      const mapName = n.bpf_map__name(m) as string;
      const section = ['.rodata', '.bss', '.data', '.kconfig'].find((s) => mapName.endsWith(s)) ?? mapName.slice(mapName.indexOf('.'));
      const id = n.btf__find_by_name_kind(btf, section, BTF_KIND_DATASEC) as number;
      if (id < 0) continue;
      const t = n.btf__type_by_id(btf, id) as Ptr;
      // struct btf_type { u32 name_off; u32 info; u32 size; } then vlen x btf_var_secinfo { u32 type, offset, size }
      const head = Buffer.from(koffi.view(t, 12));
      const vlen = head.readUInt32LE(4) & 0xffff;
      const secinfo = Buffer.from(koffi.view(t + 12n, vlen * 12));
      for (let i = 0; i < vlen; i++) {
        const varId = secinfo.readUInt32LE(i * 12);
        const vt = Buffer.from(koffi.view(n.btf__type_by_id(btf, varId) as Ptr, 4));
        const name = n.btf__name_by_offset(btf, vt.readUInt32LE(0)) as string;
        out.set(name, { map: m, section, offset: secinfo.readUInt32LE(i * 12 + 4), size: secinfo.readUInt32LE(i * 12 + 8) });
      }
    }
    this.globalsCache = out;
    return out;
  }

  /** names of the global variables setGlobal knows */
  globalNames(): string[] {
    return [...this.globals().keys()];
  }

  /** set a .rodata (const volatile) / .bss / .data global before load; value at most the variable's size */
  setGlobal(name: string, value: Buffer): void {
    if (this.loaded) throw new Error(`setGlobal ${name}: ${this.path} is already loaded`);
    const g = this.globals().get(name);
    if (!g) throw new Error(`setGlobal: no global variable '${name}' in ${this.path} (have: ${this.globalNames().join(', ') || 'none'})`);
    if (value.length > g.size) throw new Error(`setGlobal ${name}: ${value.length} bytes given, the variable has ${g.size}`);
    const psize = [0];
    const p = nonNull(`bpf_map__initial_value ${g.section}`, N().bpf_map__initial_value(g.map, psize) as Ptr | null);
    if (g.offset + g.size > psize[0]) throw new Error(`setGlobal ${name}: variable outside ${g.section} (${psize[0]} bytes)`);
    const mem = new Uint8Array(koffi.view(p, psize[0]));
    mem.set(value, g.offset);
    if (value.length < g.size) mem.fill(0, g.offset + value.length, g.offset + g.size);
  }

  setAutoload(prog: string, on: boolean): void {
    check(`bpf_program__set_autoload ${prog}`, N().bpf_program__set_autoload(this.progPtr(prog), on));
  }

  /** before load: resize a map (e.g. a ring buffer: a power of two, multiple of the page size) */
  setMaxEntries(map: string, n: number): void {
    check(`bpf_map__set_max_entries ${map}`, N().bpf_map__set_max_entries(this.mapPtr(map), n));
  }

  /** before load: pin a map at path; on load libbpf reuses the map pinned there, or creates and pins it */
  setPinPath(map: string, path: string): void {
    ensureBpffs();
    securePinDir(dirname(path));
    check(`bpf_map__set_pin_path ${map}`, N().bpf_map__set_pin_path(this.mapPtr(map), path));
  }

  load(): void {
    if (this.loaded) return;
    ensureBpffs();
    check(`bpf_object__load ${this.path}`, N().bpf_object__load(this.o), quietDepth > 0 ? undefined : 'see the libbpf log lines above');
    this.loaded = true;
  }

  /** attach one program, or every autoloaded one; links are kept until close() */
  attach(prog?: string): void {
    if (!this.loaded) throw new Error(`attach: load ${this.path} first`);
    const n = N();
    const progs = prog ? [this.progPtr(prog)] : [];
    if (!prog) {
      for (let p = n.bpf_object__next_program(this.o, null) as Ptr | null; p; p = n.bpf_object__next_program(this.o, p) as Ptr | null) {
        if (n.bpf_program__autoload(p)) progs.push(p);
      }
    }
    ensureTracefs();
    for (const p of progs) {
      const name = n.bpf_program__name(p) as string;
      const link = nonNull(`bpf_program__attach ${name}`, n.bpf_program__attach(p) as Ptr | null);
      const list = this.links.get(name) ?? [];
      list.push(link);
      this.links.set(name, list);
    }
  }

  /** names of attached programs */
  attached(): string[] {
    return [...this.links.keys()];
  }

  /** pin the (last) link of an attached program so it outlives this process */
  pinLink(prog: string, path: string): void {
    const links = this.links.get(prog);
    if (!links?.length) throw new Error(`pinLink: program ${prog} is not attached`);
    ensureBpffs();
    securePinDir(dirname(path));
    check(`bpf_link__pin ${prog} at ${path}`, N().bpf_link__pin(links[links.length - 1], path));
  }

  /** a map of the loaded object */
  map(name: string): BpfMap {
    let m = this.maps.get(name);
    if (m) return m;
    if (!this.loaded) throw new Error(`map ${name}: load ${this.path} first`);
    const fd = check(`bpf_map__fd ${name}`, N().bpf_map__fd(this.mapPtr(name)));
    m = new BpfMap(fd, false);
    this.maps.set(name, m);
    return m;
  }

  /** destroy links (pinned ones stay attached through their pin) and close the object */
  close(): void {
    if (this.obj === null) return;
    const n = N();
    for (const list of this.links.values()) for (const l of list) n.bpf_link__destroy(l);
    this.links.clear();
    n.bpf_object__close(this.obj);
    this.obj = null;
  }
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

/** create a map directly (probes, tests) */
export function createMap(type: number, name: string, keySize: number, valueSize: number, maxEntries: number): BpfMap {
  requireLiveBpf();
  const fd = check(`bpf_map_create ${name}`, N().bpf_map_create(type, name, keySize, valueSize, maxEntries, null));
  return new BpfMap(fd, true);
}

// ---- ring buffer ----

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const MAP_FAILED = 0xffffffffffffffffn;
const RB_BUSY = 0x80000000;
const RB_DISCARD = 0x40000000;
const RB_HDR = 8;
let PAGE = 0; // the system page size, read on the first add()

interface Ring {
  map: BpfMap;
  source: number;
  consPtr: Ptr;
  dataPtr: Ptr;
  dataLen: number;
  mask: number;
  cons: BigUint64Array;   // [0] = consumer_pos (we write)
  prod: BigUint64Array;   // [0] = producer_pos (kernel writes)
  hdr: Int32Array;        // data area (both copies) as 32-bit words
  buf: Buffer;            // data area as bytes
  poll: { close(): void } | null;
}

export interface RingBufferOptions {
  /** at most this many records per event-loop turn before yielding to timers and I/O (default 65536) */
  budget?: number;
  /** at most about this many milliseconds per event-loop turn (default 2; checked every 256 records) */
  sliceMs?: number;
  /** onRecord is a RecordViewHandler: (ring, offset, length, source), no Buffer made per record */
  view?: boolean;
}

/** a record as its own Buffer (a view into the ring made per record) */
export type RecordHandler = (data: Buffer, source: number) => void;
/**
 * a record in place: its bytes are data[offset, offset + length), data being the ring's whole data area
 * (the same Buffer for every record of a ring; records that wrap are contiguous through the second
 * mapping). Nothing is allocated per record; read what you keep before returning.
 */
export type RecordViewHandler = (data: Buffer, offset: number, length: number, source: number) => void;

/**
 * Drains BPF ring buffer maps from the Node event loop: the map's consumer/producer pages and data area
 * are mmapped and records parsed in JS (no FFI call per record); readiness comes from a libuv poll on
 * the map fd. onRecord gets a view into the ring: copy what you keep, it is reused once onRecord returns.
 * With { view: true } onRecord is a RecordViewHandler and gets the ring, an offset and a length instead
 * of a Buffer per record (the hot path of signals/live.ts).
 */
export class RingBuffer {
  private readonly rings: Ring[] = [];
  private running = false;
  private readonly budget: number;
  private readonly sliceMs: number;
  /** records delivered */
  count = 0;
  /** records whose onRecord threw while draining from the event loop (logged) */
  errors = 0;
  private stopped = false;
  private depth = 0;

  private readonly onView: RecordViewHandler;

  constructor(onRecord: RecordViewHandler, o: RingBufferOptions & { view: true });
  constructor(onRecord: RecordHandler, o?: RingBufferOptions & { view?: false });
  constructor(onRecord: RecordHandler | RecordViewHandler, o: RingBufferOptions = {}) {
    this.budget = o.budget ?? 65536;
    this.sliceMs = o.sliceMs ?? 2;
    if (o.view) this.onView = onRecord as RecordViewHandler;
    else {
      const h = onRecord as RecordHandler;
      this.onView = (data, offset, length, source) => h(data.subarray(offset, offset + length), source);
    }
  }

  /** add a ring buffer map; source is its index in add order */
  add(map: BpfMap): number {
    if (this.stopped) throw new Error('RingBuffer.add: stopped');
    if (map.type !== BPF_MAP_TYPE_RINGBUF) throw new Error(`RingBuffer.add: map ${map.name} is not a ring buffer (type ${map.type})`);
    const n = N();
    const size = map.maxEntries;
    PAGE ||= n.getpagesize() as number;
    const consPtr = n.mmap(null, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, map.fd, 0) as Ptr;
    if (consPtr === MAP_FAILED || !consPtr) throw new BpfError(`mmap consumer page of ${map.name}`, koffi.errno());
    const dataLen = PAGE + 2 * size;
    const dataPtr = n.mmap(null, dataLen, PROT_READ, MAP_SHARED, map.fd, PAGE) as Ptr;
    if (dataPtr === MAP_FAILED || !dataPtr) {
      n.munmap(consPtr, PAGE);
      throw new BpfError(`mmap data area of ${map.name}`, koffi.errno());
    }
    const consAb = koffi.view(consPtr, PAGE);
    const dataAb = koffi.view(dataPtr, dataLen);
    const ring: Ring = {
      map, source: this.rings.length, consPtr, dataPtr, dataLen, mask: size - 1,
      cons: new BigUint64Array(consAb, 0, 1), prod: new BigUint64Array(dataAb, 0, 1),
      hdr: new Int32Array(dataAb, PAGE), buf: Buffer.from(dataAb, PAGE), poll: null,
    };
    this.rings.push(ring);
    if (this.running) this.watch(ring);
    return ring.source;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const r of this.rings) this.watch(r);
    // records already waiting
    setImmediate(() => this.turn());
  }

  private watch(r: Ring): void {
    r.poll = koffi.node.poll(r.map.fd, { readable: true }, () => this.guarded(r));
  }

  // one event-loop turn: every ring, within the budget and time slice
  private turn(): void {
    for (const r of this.rings) this.guarded(r);
  }

  // a throwing onRecord must not take the process down from inside a poll callback: log it, carry on
  private guarded(r: Ring): void {
    if (!this.running) return;
    try {
      this.drain(r, this.budget, this.sliceMs);
    } catch (e) {
      this.errors++;
      log.error({ err: e, map: r.map.name }, 'ring buffer record handler threw');
    }
  }

  /** deliver every record waiting now in every ring (no budget, no time slice); returns how many */
  drainAll(): number {
    let total = 0;
    for (const r of this.rings) total += this.drain(r, Infinity, Infinity);
    return total;
  }

  // the libbpf consumer loop (ringbuf_process_ring) in JS
  private drain(r: Ring, budget: number, sliceMs: number): number {
    if (this.stopped) return 0;
    let cons = Number(Atomics.load(r.cons, 0));
    let done = 0;
    let sinceStore = 0;
    const deadline = performance.now() + sliceMs;
    const { hdr, buf, mask } = r;
    this.depth++;
    try {
      outer: for (;;) {
        const prod = Number(Atomics.load(r.prod, 0));
        if (cons >= prod) break;
        while (cons < prod) {
          const off = cons & mask;
          const len = Atomics.load(hdr, off >> 2) >>> 0;
          // reserved, not yet committed: later records wait for it
          if (len & RB_BUSY) break outer;
          const size = len & ~(RB_BUSY | RB_DISCARD);
          cons += (size + RB_HDR + 7) & ~7;
          if (!(len & RB_DISCARD)) {
            this.onView(buf, off + RB_HDR, size, r.source);
            done++;
            // stop() was called from onRecord
            if (this.stopped) break outer;
          }
          if (++sinceStore >= 256) {
            // hand the space back to the kernel, and yield when the slice is used up
            Atomics.store(r.cons, 0, BigInt(cons));
            sinceStore = 0;
            if (performance.now() > deadline) break outer;
          }
          if (done >= budget) break outer;
        }
      }
    } finally {
      Atomics.store(r.cons, 0, BigInt(cons));
      this.count += done;
      if (--this.depth === 0 && this.stopped) this.unmap();
    }
    return done;
  }

  private unmap(): void {
    const n = native;
    for (const r of this.rings) {
      if (n) {
        n.munmap(r.dataPtr, r.dataLen);
        n.munmap(r.consPtr, PAGE);
      }
    }
    this.rings.length = 0;
  }

  /** stop polling and unmap the rings (after the current drain, when called from onRecord); the process can exit afterwards */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.running = false;
    this.stopped = true;
    for (const r of this.rings) {
      r.poll?.close();
      r.poll = null;
    }
    if (this.depth === 0) this.unmap();
    await new Promise<void>((res) => setImmediate(res));
  }
}

/**
 * The same interface through libbpf's own consumer (ring_buffer__new / __consume, one koffi callback per
 * record, readiness from ring_buffer__epoll_fd). Slower than RingBuffer; kept as the baseline of
 * bench/ringbuf.ts and as a fallback.
 */
let sampleFn: ReturnType<typeof koffi.proto> | undefined;

export class LibbpfRingBuffer {
  private rb: Ptr | null = null;
  private cb: bigint | null = null;
  private poll: { close(): void } | null = null;
  private readonly fds: number[] = [];
  count = 0;

  constructor(private readonly onRecord: (data: Buffer, source: number) => void) {}

  add(map: BpfMap): number {
    const n = N();
    if (!this.cb) {
      sampleFn ??= koffi.proto('int krsi_ring_sample(void *ctx, void *data, size_t size)');
      this.cb = koffi.register((ctx: bigint | null, data: bigint, size: number) => {
        this.count++;
        this.onRecord(Buffer.from(koffi.view(data, size)), Number(ctx ?? 0n));
        return 0;
      }, koffi.pointer(sampleFn));
    }
    const source = this.fds.length;
    if (this.rb === null) this.rb = nonNull(`ring_buffer__new ${map.name}`, n.ring_buffer__new(map.fd, this.cb, null, null) as Ptr | null);
    else check(`ring_buffer__add ${map.name}`, n.ring_buffer__add(this.rb, map.fd, this.cb, BigInt(source)));
    this.fds.push(map.fd);
    return source;
  }

  start(): void {
    if (this.rb === null || this.poll) return;
    const rb = this.rb;
    this.poll = koffi.node.poll(N().ring_buffer__epoll_fd(rb), { readable: true }, () => {
      check('ring_buffer__consume', N().ring_buffer__consume(rb));
    });
    setImmediate(() => this.rb && N().ring_buffer__consume(this.rb));
  }

  /** consume everything waiting now */
  drainAll(): number {
    return this.rb === null ? 0 : check('ring_buffer__consume', N().ring_buffer__consume(this.rb));
  }

  async stop(): Promise<void> {
    this.poll?.close();
    this.poll = null;
    if (this.rb !== null) N().ring_buffer__free(this.rb);
    this.rb = null;
    if (this.cb) koffi.unregister(this.cb);
    this.cb = null;
    await new Promise<void>((res) => setImmediate(res));
  }
}
