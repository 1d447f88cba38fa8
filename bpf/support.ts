// supported(): what this host can do for krsi, probed once and cached. Every "no" comes with a human
// line in reasons[] saying why and what to do. Probes load tiny programs from bpf/probe.bpf.c and close
// them at once; nothing stays attached.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { ensureObject } from './build.ts';
import {
  BpfError, BpfObject, BPF_MAP_TYPE_RINGBUF, createMap, ensureSecurityfs, ensureTracefs, libbpfPath, libbpfVersion, quietly,
} from './libbpf.ts';

export interface Support {
  kernel: string;
  /** running as root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN for LSM) */
  root: boolean;
  /** libbpf.so.1 found */
  libbpf: boolean;
  libbpfVersion?: string;
  libbpfPath?: string;
  /** /sys/kernel/btf/vmlinux */
  btf: boolean;
  /** a BPF_MAP_TYPE_RINGBUF map can be created */
  ringbuf: boolean;
  /** a tp/ program loads and attaches */
  tracepoints: boolean;
  /** a tp_btf/ (BTF-enabled tracepoint) program loads and attaches */
  tpBtf: boolean;
  /** /sys/kernel/security/lsm lists bpf */
  lsmActive: boolean;
  /** the active LSMs, when readable */
  lsms?: string[];
  /** an LSM program loads */
  lsmLoads: boolean;
  /** the kernel supports modules (/proc/modules) */
  modules: boolean;
  /** live signals can run (root, libbpf, btf, ringbuf, tracepoints, tp_btf) */
  live: boolean;
  /** enforcement can run (live and LSM programs load) */
  enforce: boolean;
  /** one human line per missing capability */
  reasons: string[];
}

let cached: Support | undefined;

/** the cached probe; { refresh: true } probes again */
export function supported(o: { refresh?: boolean } = {}): Support {
  if (!cached || o.refresh) cached = probe();
  return cached;
}

function errText(e: unknown): string {
  return e instanceof BpfError ? e.message : (e as Error).message.split('\n')[0];
}

// open the probe object with only `prog` autoloaded, load it, optionally attach, close
function tryProgram(prog: 'probe_tp' | 'probe_tp_btf' | 'probe_lsm', attach: boolean): void {
  const obj = BpfObject.open(ensureObject('probe'));
  try {
    for (const p of obj.programs()) obj.setAutoload(p, p === prog);
    quietly(() => {
      obj.load();
      if (attach) obj.attach(prog);
    });
  } finally {
    obj.close();
  }
}

function probe(): Support {
  const reasons: string[] = [];
  const s: Support = {
    kernel: release(), root: process.getuid?.() === 0, libbpf: false, btf: existsSync('/sys/kernel/btf/vmlinux'),
    ringbuf: false, tracepoints: false, tpBtf: false, lsmActive: false, lsmLoads: false, modules: existsSync('/proc/modules'),
    live: false, enforce: false, reasons,
  };
  s.libbpfPath = libbpfPath();
  s.libbpf = s.libbpfPath !== undefined;
  if (s.libbpf) s.libbpfVersion = libbpfVersion();

  if (!s.root) reasons.push('not root: krsi needs root (CAP_BPF, CAP_PERFMON) to load BPF programs');
  if (!s.libbpf) reasons.push('libbpf.so.1 not found: install the Debian package libbpf1');
  if (!s.btf) reasons.push('no kernel BTF (/sys/kernel/btf/vmlinux): the kernel needs CONFIG_DEBUG_INFO_BTF=y');
  if (!s.modules) reasons.push('no /proc/modules: the kernel has no module support (module signals report themselves unavailable)');

  // the active LSMs (readable without root when securityfs is mounted)
  try {
    if (s.root) ensureSecurityfs();
    s.lsms = readFileSync('/sys/kernel/security/lsm', 'utf8').trim().split(',').filter(Boolean);
    s.lsmActive = s.lsms.includes('bpf');
    if (!s.lsmActive) reasons.push(`BPF LSM not active (active LSMs: ${s.lsms.join(',')}): boot with lsm=${[...s.lsms, 'bpf'].join(',')} on a kernel with CONFIG_BPF_LSM=y`);
  } catch (e) {
    reasons.push(`cannot read /sys/kernel/security/lsm: ${errText(e)}`);
  }

  if (s.root && s.libbpf) {
    try {
      createMap(BPF_MAP_TYPE_RINGBUF, 'krsi_probe_rb', 0, 0, 4096).close();
      s.ringbuf = true;
    } catch (e) {
      reasons.push(`ring buffer maps unavailable (kernel 5.8+ needed): ${errText(e)}`);
    }
    try {
      ensureTracefs();
      tryProgram('probe_tp', true);
      s.tracepoints = true;
    } catch (e) {
      reasons.push(`tracepoint programs do not load or attach: ${errText(e)}`);
    }
    try {
      tryProgram('probe_tp_btf', true);
      s.tpBtf = true;
    } catch (e) {
      reasons.push(`tp_btf programs do not load or attach (exec signals need them; kernel 5.5+ with BTF): ${errText(e)}`);
    }
    try {
      tryProgram('probe_lsm', false);
      s.lsmLoads = true;
    } catch (e) {
      const eperm = e instanceof BpfError && e.errno === 1;
      reasons.push(`LSM programs do not load${eperm ? ' (EPERM: BPF LSM off, or refused by this kernel)' : ''}: ${errText(e)}`);
    }
  } else {
    reasons.push('kernel probes skipped (ring buffer, tracepoints, tp_btf, LSM load): they need root and libbpf');
  }
  s.live = s.root && s.libbpf && s.btf && s.ringbuf && s.tracepoints && s.tpBtf;
  s.enforce = s.live && s.lsmLoads;
  return s;
}
