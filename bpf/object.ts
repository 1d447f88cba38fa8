// A BPF ELF object through libbpf: open, then set globals, autoload and map pins, then load, attach
// (links kept until close), pin links.
import koffi from 'koffi';
import { existsSync, readSync } from 'node:fs';
import { dirname } from 'node:path';
import { BpfError, check, nonNull } from './errors.ts';
import { BpfMap } from './map.ts';
import { ensureBpffs, ensureTracefs } from './mounts.ts';
import { N, requireLiveBpf, type Ptr } from './native.ts';
import { securePinDir } from './pins.ts';
import { isQuiet } from './print.ts';

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
    check(`bpf_object__load ${this.path}`, N().bpf_object__load(this.o), isQuiet() ? undefined : 'see the libbpf log lines above');
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

  /** runs an iter/bpf_map_elem program over one of this object's maps and returns what it wrote: an
   *  iterator link and its fd live only for this call (a fresh walk of the map each time) */
  iterateMap(prog: string, map: string): Buffer {
    if (!this.loaded) throw new Error(`iterateMap: load ${this.path} first`);
    const n = N();
    const info = Buffer.alloc(16); // union bpf_iter_link_info: map.map_fd
    info.writeUInt32LE(this.map(map).fd, 0);
    const opts = Buffer.alloc(24); // struct bpf_iter_attach_opts { size_t sz; void *link_info; __u32 link_info_len; }
    opts.writeBigUInt64LE(24n, 0);
    opts.writeBigUInt64LE(koffi.address(info), 8);
    opts.writeUInt32LE(info.length, 16);
    const link = nonNull(`bpf_program__attach_iter ${prog}`, n.bpf_program__attach_iter(this.progPtr(prog), opts) as Ptr | null);
    let fd = -1;
    try {
      fd = check(`bpf_iter_create ${prog}`, n.bpf_iter_create(n.bpf_link__fd(link)));
      const parts: Buffer[] = [];
      const chunk = Buffer.alloc(1 << 16);
      for (;;) {
        const got = readSync(fd, chunk, 0, chunk.length, null);
        if (got <= 0) break;
        parts.push(Buffer.from(chunk.subarray(0, got)));
      }
      return Buffer.concat(parts);
    } finally {
      if (fd >= 0) n.close(fd);
      n.bpf_link__destroy(link);
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
    // its maps' fds close with it: a BpfMap kept by a caller must not use the number another file gets
    for (const m of this.maps.values()) m.close();
    this.maps.clear();
    n.bpf_object__close(this.obj);
    this.obj = null;
  }
}
