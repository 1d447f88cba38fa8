// What the kernel says an object behind an fd is (bpf_obj_get_info_by_fd, the fd's anon inode):
// asked of a pinned map, program or link before it is trusted.
import koffi from 'koffi';
import { readlinkSync } from 'node:fs';
import { check } from './errors.ts';
import { N, cstr, type Ptr } from './native.ts';

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

export type BpfObjKind = 'map' | 'prog' | 'link';

/** the kind of BPF object behind an fd (its anon inode: bpf-map, bpf-prog, bpf_link), or undefined */
export function objKind(fd: number): BpfObjKind | undefined {
  return /^anon_inode:bpf[-_](map|prog|link)$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1] as BpfObjKind | undefined;
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
