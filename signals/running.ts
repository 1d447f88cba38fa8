// Running executables (issue 11): signals.bpf.c's run_inode / run_tgid maps know the inode every process
// runs from its exec or fork on. Processes that started before krsi are seeded here from /proc/PID/exe:
// their (dev, ino), link count and size, without the kernel's inode pointer, which the BPF side fills in
// when such a process forks or execs (signals/LIVE.md: what that leaves out on tracepoint-only kernels).
import { readdirSync, statSync } from 'node:fs';
import { kernelFileId } from '../bpf/file-id.ts';
import { BPF_NOEXIST, type BpfMap } from '../bpf/libbpf.ts';
import { KRSI_RUN_PIDS, LAYOUTS, encodeInodeKey, encodeTgidKey } from '../bpf/abi.ts';

const RI = LAYOUTS.krsi_run_inode;
const RT = LAYOUTS.krsi_run_tgid;

/** seed the maps from /proc (pids the kernel side already knows are left alone); returns how many were added */
/** /proc/PID/exe as the hooks see it (overlayfs, btrfs: the superblock's device), else stat()'s */
function exeId(pid: number): { dev: number; ino: number; size: number; nlink: number } {
  const st = statSync(`/proc/${pid}/exe`);
  try {
    return { ...kernelFileId(`/proc/${pid}/exe`), size: st.size, nlink: st.nlink };
  } catch {
    return st;
  }
}

export function seedRunning(runInode: BpfMap, runTgid: BpfMap, self = process.pid): number {
  let added = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === self) continue;
    let st;
    try {
      st = exeId(pid); // the executable itself, also when deleted
    } catch {
      continue; // a kernel thread, or gone
    }
    const key = encodeInodeKey({ dev: st.dev, ino: st.ino });
    const tk = encodeTgidKey(pid);
    if (runTgid.lookup(tk)) continue;
    const t = Buffer.alloc(RT.size);
    key.copy(t, RT.fields.exe);
    try {
      runTgid.update(tk, t, BPF_NOEXIST);
    } catch {
      continue; // exec'd meanwhile (the kernel side has it), or the map is full
    }
    const v = runInode.lookup(key) ?? Buffer.alloc(RI.size);
    if (!runInode.lookup(key)) {
      v.writeBigInt64LE(BigInt(st.size), RI.fields.size);
      v.writeUInt32LE(st.nlink, RI.fields.nlink);
    }
    v.writeUInt32LE(v.readUInt32LE(RI.fields.refs) + 1, RI.fields.refs);
    for (let i = 0; i < KRSI_RUN_PIDS; i++) {
      const o = RI.fields.pids + 4 * i;
      if (v.readUInt32LE(o) === 0) {
        v.writeUInt32LE(pid, o);
        break;
      }
    }
    try {
      runInode.update(key, v);
      added++;
    } catch {
      // full: counted by nothing but the missing entry (run_full counts the kernel side's)
    }
  }
  return added;
}
