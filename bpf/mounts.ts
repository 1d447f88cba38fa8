// The kernel filesystems krsi needs, mounted when missing: bpffs (pins), tracefs (tp/ attach),
// securityfs (the active LSMs).
import koffi from 'koffi';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { childLogger } from '../lib/logger.ts';
import { BpfError } from './errors.ts';
import { N } from './native.ts';
import { BPFFS } from './pins.ts';

const log = childLogger('libbpf');

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
