// What each of krsi's BPF programs needs from the running kernel, and whether this kernel has it: the LSM hook
// (BTF function bpf_lsm_<hook>), the BTF tracepoint (typedef btf_trace_<name>), the classic tracepoint
// (tracefs events/<cat>/<name>), the kprobe target (/proc/kallsyms), plus the enum values the programs
// choose between with CO-RE at load time. Read from the kernel's own BTF (/sys/kernel/btf/vmlinux, readable
// without root) so `krsi status` can say what is missing before anything is loaded.
import { existsSync, readFileSync } from 'node:fs';
import { ensureObject } from './build.ts';
import { BpfObject } from './libbpf.ts';

/** the objects whose programs krsi loads */
export const FEATURE_OBJECTS = ['signals', 'enforce', 'protect'] as const;

export interface ProgramFeature {
  object: string;
  program: string;
  /** the section: lsm/bprm_check_security, tp_btf/sched_process_exec, tp/syscalls/sys_enter_unlink, kprobe/vfs_unlink */
  section: string;
  /** what the kernel must have for it, in words */
  needs: string;
  /** true / false, or undefined when this host cannot tell (tracefs or kallsyms unreadable) */
  present: boolean | undefined;
}

export interface KernelFeatures {
  btf: boolean;
  programs: ProgramFeature[];
  /** enum values chosen at load time (CO-RE): name -> present */
  enums: Record<string, boolean | undefined>;
}

/** BTF kinds (include/uapi/linux/btf.h) and the bytes that follow a type of that kind, per vlen entry or fixed */
const KIND = { ENUM: 6, TYPEDEF: 8, FUNC: 12, ENUM64: 19 };
function trailing(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 14: case 17: return 4; // INT, VAR, DECL_TAG
    case 3: return 12; // ARRAY
    case 4: case 5: case 15: case 19: return 12 * vlen; // STRUCT, UNION, DATASEC, ENUM64
    case 6: case 13: return 8 * vlen; // ENUM, FUNC_PROTO
    default: return 0;
  }
}

/** calls fn for each type of a raw BTF blob in id order (ids count from 1; `at` is the offset of its
 *  struct btf_type); returns where the string section starts */
function eachBtfType(buf: Buffer, fn: (id: number, at: number, kind: number, vlen: number) => void): number {
  if (buf.length < 24 || buf.readUInt16LE(0) !== 0xeb9f) throw new Error('not a BTF blob (bad magic)');
  const hdr = buf.readUInt32LE(4);
  const typeOff = hdr + buf.readUInt32LE(8);
  const typeEnd = typeOff + buf.readUInt32LE(12);
  let id = 1;
  for (let p = typeOff; p + 12 <= typeEnd; id++) {
    const info = buf.readUInt32LE(p + 4);
    const kind = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    fn(id, p, kind, vlen);
    p += 12 + trailing(kind, vlen);
  }
  return hdr + buf.readUInt32LE(16);
}

/** the names of BTF functions and typedefs, and enumerators as "enum_name.VALUE", in a raw BTF blob */
export function btfNames(buf: Buffer): Set<string> {
  const names = new Set<string>();
  const found: [number, number, number][] = [];
  const strOff = eachBtfType(buf, (_, at, kind, vlen) => {
    if (kind === KIND.FUNC || kind === KIND.TYPEDEF || kind === KIND.ENUM || kind === KIND.ENUM64) found.push([at, kind, vlen]);
  });
  const str = (off: number) => buf.toString('latin1', strOff + off, buf.indexOf(0, strOff + off));
  for (const [at, kind, vlen] of found) {
    const nameOff = buf.readUInt32LE(at);
    if (kind === KIND.FUNC) names.add(`func:${str(nameOff)}`);
    else if (kind === KIND.TYPEDEF) names.add(`typedef:${str(nameOff)}`);
    else {
      const e = str(nameOff);
      const w = kind === KIND.ENUM ? 8 : 12;
      for (let i = 0; i < vlen; i++) names.add(`enum:${e}.${str(buf.readUInt32LE(at + 12 + i * w))}`);
    }
  }
  return names;
}

/** how many parameters the kernel function `name` takes, from a raw BTF blob (FUNC -> its FUNC_PROTO's vlen);
 *  undefined when the blob has no such function. An LSM hook's arguments (bpf_lsm_<hook>) change between
 *  kernels: 6.16 gave the bpf hook a fourth, `bool kernel` */
export function funcParamCount(buf: Buffer, name: string): number | undefined {
  const want = Buffer.from(`${name}\0`, 'latin1');
  const protoVlen = new Map<number, number>();
  const funcs: number[] = [];
  const strOff = eachBtfType(buf, (id, at, kind, vlen) => {
    if (kind === 13) protoVlen.set(id, vlen); // FUNC_PROTO
    else if (kind === KIND.FUNC) funcs.push(at);
  });
  for (const at of funcs) {
    const off = strOff + buf.readUInt32LE(at);
    if (buf.compare(want, 0, want.length, off, off + want.length) === 0) return protoVlen.get(buf.readUInt32LE(at + 8));
  }
  return undefined;
}

/** the running kernel's parameter count of an LSM hook (bpf_lsm_<hook>), or undefined when unknown */
export function lsmHookArgs(hook: string, btfPath = '/sys/kernel/btf/vmlinux'): number | undefined {
  try {
    return funcParamCount(readFileSync(btfPath), `bpf_lsm_${hook}`);
  } catch {
    return undefined;
  }
}

function tracefsRoot(): string | undefined {
  return ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'].find((d) => existsSync(`${d}/events`));
}

function kallsyms(): Set<string> | undefined {
  try {
    return new Set(readFileSync('/proc/kallsyms', 'utf8').split('\n').map((l) => l.split(' ')[2]?.split('\t')[0]).filter(Boolean));
  } catch {
    return undefined;
  }
}

/** what one program section needs, checked against the kernel's names */
export function sectionNeeds(section: string, btf: Set<string> | undefined, tracefs: string | undefined, syms: () => Set<string> | undefined): Omit<ProgramFeature, 'object' | 'program' | 'section'> {
  const [type, ...rest] = section.split('/');
  const name = rest.join('/');
  switch (type) {
    case 'lsm':
      return { needs: `LSM hook ${name} (BTF func bpf_lsm_${name})`, present: btf?.has(`func:bpf_lsm_${name}`) };
    case 'tp_btf':
      return { needs: `BTF tracepoint ${name} (btf_trace_${name})`, present: btf?.has(`typedef:btf_trace_${name}`) };
    case 'tp':
    case 'tracepoint':
      return { needs: `tracepoint ${name}`, present: tracefs ? existsSync(`${tracefs}/events/${name}`) : undefined };
    case 'iter':
      return { needs: `BPF iterator ${name} (BTF func bpf_iter_${name})`, present: btf?.has(`func:bpf_iter_${name}`) };
    case 'kprobe':
    case 'kretprobe': {
      const s = syms();
      return { needs: `kernel function ${name} (kprobes)`, present: s && s.size > 1 ? s.has(name) : undefined };
    }
    default:
      return { needs: section, present: undefined };
  }
}

/** the enum values krsi's programs test for with CO-RE (bpf/enforce.bpf.c) */
export const CORE_ENUMS = ['kernel_read_file_id.READING_MODULE', 'kernel_read_file_id.READING_MODULE_COMPRESSED', 'kernel_load_data_id.LOADING_MODULE'];

/** every program of krsi's objects with what it needs and whether this kernel has it */
export function kernelFeatures(btfPath = '/sys/kernel/btf/vmlinux'): KernelFeatures {
  let btf: Set<string> | undefined;
  try {
    btf = btfNames(readFileSync(btfPath));
  } catch {
    btf = undefined;
  }
  const tracefs = tracefsRoot();
  let symCache: Set<string> | undefined | null = null;
  const syms = () => (symCache === null ? (symCache = kallsyms()) : symCache);
  const programs: ProgramFeature[] = [];
  for (const object of FEATURE_OBJECTS) {
    const obj = BpfObject.open(ensureObject(object));
    try {
      for (const program of obj.programs()) {
        const { section } = obj.progSpec(program);
        programs.push({ object, program, section, ...sectionNeeds(section, btf, tracefs, syms) });
      }
    } finally {
      obj.close();
    }
  }
  const enums: Record<string, boolean | undefined> = {};
  for (const e of CORE_ENUMS) enums[e] = btf?.has(`enum:${e}`);
  return { btf: btf !== undefined, programs, enums };
}
