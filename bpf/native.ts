// The koffi binding of libbpf.so.1 and the few libc calls krsi needs, bound on first use so that
// importing bpf/ never fails on a host without libbpf; N() is the bound library.
import koffi from 'koffi';
import { existsSync, realpathSync } from 'node:fs';
import { installPrint } from './print.ts';

export const LIBBPF_PATHS = [
  '/usr/lib/x86_64-linux-gnu/libbpf.so.1',
  '/usr/lib/aarch64-linux-gnu/libbpf.so.1',
  '/usr/lib64/libbpf.so.1',
  '/usr/lib/libbpf.so.1',
];

/** a missing prerequisite (root, libbpf.so.1): the CLI exits 3 with this message */
export class BpfPrereqError extends Error {
  readonly exitCode = 3;
  constructor(message: string) {
    super(message);
    this.name = 'BpfPrereqError';
  }
}

export type Ptr = bigint;
type Fn = ((...args: any[]) => any) & { async: (...args: any[]) => void };

export interface Native {
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
  bpf_link__pin: Fn; bpf_link__destroy: Fn; bpf_program__attach_iter: Fn; bpf_link__fd: Fn; bpf_iter_create: Fn;
  btf__find_by_name_kind: Fn; btf__type_by_id: Fn; btf__name_by_offset: Fn;
  bpf_map_create: Fn; bpf_map_update_elem: Fn; bpf_map_lookup_elem: Fn; bpf_map_delete_elem: Fn;
  bpf_map_get_next_key: Fn; bpf_obj_pin: Fn; bpf_obj_get: Fn; bpf_obj_get_info_by_fd: Fn;
  ring_buffer__new: Fn; ring_buffer__add: Fn; ring_buffer__consume: Fn; ring_buffer__epoll_fd: Fn; ring_buffer__free: Fn;
  // libc
  close: Fn; getpagesize: Fn; mmap: Fn; munmap: Fn; mount: Fn; vsnprintf: Fn;
}

let native: Native | undefined;
const NO_LIBBPF = 'krsi: libbpf.so.1 not found: install the Debian package libbpf1 (apt-get install libbpf1)';

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
  if (!libbpfPath()) throw new BpfPrereqError(NO_LIBBPF);
}

/** the bound libraries (loaded on the first call); throws BpfPrereqError without libbpf.so.1 */
export function N(): Native {
  if (native) return native;
  const path = libbpfPath();
  if (!path) throw new BpfPrereqError(NO_LIBBPF);
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
    bpf_program__attach_iter: f(bpf, 'bpf_link *bpf_program__attach_iter(bpf_program *prog, const void *opts)'),
    bpf_link__fd: f(bpf, 'int bpf_link__fd(bpf_link *link)'),
    bpf_iter_create: f(bpf, 'int bpf_iter_create(int link_fd)'),
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

/** a NUL-terminated C string in buf */
export function cstr(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}
