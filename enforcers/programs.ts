// Loads krsi's BPF-LSM enforcement programs (bpf/enforce.bpf.c) and pins their maps and links under
// /sys/fs/bpf/krsi/enforce/ (a directory only root can change: bpf/pins.ts), so enforcement keeps working
// after krsi exits; a restarted krsi reuses the pinned maps (and links) once they check out with the kernel
// (enforcers/pinset.ts), and replaces those that do not. While krsi runs it holds the links open and pins
// again what someone unpins. unloadEnforcement() unpins everything (detaches).
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync, rmdirSync, symlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { ensureObject } from '../bpf/build.ts';
import { supported } from '../bpf/support.ts';
import { BpfError, BpfMap, BpfObject, RingBuffer, closeFd, ensureBpffs, ensureSecurityfs, ensureTracefs, unpinPath } from '../bpf/libbpf.ts';
import { PinRefused, pinFileProblem, securePinDir } from '../bpf/pins.ts';
import { childLogger } from '../lib/logger.ts';
import {
  CONFIG_KEY, ENFORCE_PIN_DIR, LINK_PINS, MAP_NAMES, MAP_PINS, PROG_NAMES, decodeConfig, decodeDenied, encodeConfig,
  type DecodedDenied, type KConfig, type MapName,
} from './maps.ts';
import { closePinSet, keepPinned, openPinSet, pinSpec, type BadPin, type PinSet, type PinSpec } from './pinset.ts';

/** how often a running krsi checks that its pins are still there */
const PIN_CHECK_MS = Number(process.env.KRSI_PIN_CHECK_MS) || 2000;
/** a symlink beside the pins whose target names the build of enforce.o the attached programs came from:
 *  programs of another build (an older krsi) pass every other check, and are reloaded */
export const BUILD_MARK = `${ENFORCE_PIN_DIR}/build`;

/** the build of an object file: the start of its sha256 */
function buildOf(path: string): string {
  return `enforce.o-${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`;
}

function markedBuild(): string | undefined {
  try {
    return readlinkSync(BUILD_MARK);
  } catch {
    return undefined;
  }
}

const log = childLogger('enforce');

/** thrown when enforcement cannot work on this kernel: callers in enforce mode must fail, never degrade */
export class EnforcementUnavailable extends Error {
  readonly exitCode = 3;
  constructor(message: string) {
    super(message);
    this.name = 'EnforcementUnavailable';
  }
}

export interface LoadOptions {
  /** krsi's own tgid: never denied (config.krsi_tgid); 0 leaves config.krsi_tgid as it is (a CLI that is not the daemon) */
  selfPid: number;
  /** config fields to set now (default: keep what a pinned config holds; fresh: enforce 1, the rest 0) */
  config?: Partial<Omit<KConfig, 'krsi_tgid'>>;
  /** reload the programs even when links are pinned (maps are still reused) */
  reload?: boolean;
}

export interface EnforcementHandle {
  /** the pinned maps, opened (closed by close(); the pins stay) */
  maps: Record<MapName, BpfMap>;
  /** true when programs were already attached through their pinned links (krsi restarted) */
  reused: boolean;
  config(): KConfig;
  setConfig(c: Partial<KConfig>): KConfig;
  /** stream denied events from the ring buffer; the returned function delivers what is waiting, then stops */
  onDenied(cb: (ev: DecodedDenied) => void, ruleName?: (id: number) => string | undefined): () => Promise<void>;
  /** close fds; programs stay attached and maps stay pinned */
  close(): void;
}

/** the reason enforcement cannot run here, or undefined (BPF LSM active: /sys/kernel/security/lsm lists bpf) */
export function lsmUnavailable(): string | undefined {
  try {
    ensureSecurityfs();
  } catch {
    // fall through: the read below says what is missing
  }
  let lsm: string;
  try {
    lsm = readFileSync('/sys/kernel/security/lsm', 'utf8').trim();
  } catch {
    return 'cannot read /sys/kernel/security/lsm (securityfs): cannot tell whether BPF LSM is active';
  }
  if (!lsm.split(',').includes('bpf')) {
    return `BPF LSM is not active (active LSMs: ${lsm || 'none'}): boot with lsm=${lsm ? `${lsm},` : ''}bpf and a kernel with CONFIG_BPF_LSM=y`;
  }
  return undefined;
}

/** every link pin is there and a pin (not a symlink, root's, on bpffs); what it holds is checked by openPinSet */
function allLinksPinned(): boolean {
  return PROG_NAMES.every((p) => pinFileProblem(LINK_PINS[p]) === undefined);
}

/** what bpf/enforce.bpf.c defines, read from the object (not loaded) */
function enforceSpec(): PinSpec {
  const obj = BpfObject.open(ensureObject('enforce'));
  try {
    return pinSpec(obj);
  } finally {
    obj.close();
  }
}

const listBad = (bad: BadPin[]) => bad.map((b) => `${b.path}: ${b.why}`).join('; ');

/** opens the pinned maps `names` once the whole pin set checks out with the kernel (PinRefused, exit 3, otherwise) */
export function openPinned<N extends MapName>(names: readonly N[]): Record<N, BpfMap> {
  securePinDir(ENFORCE_PIN_DIR);
  const { set, bad } = openPinSet(enforceSpec(), names);
  if (!set) throw new PinRefused(`krsi: the enforcement pins do not check out (${listBad(bad)}); \`krsi run --mode enforce\` replaces them`);
  for (const l of Object.values<{ fd: number }>(set.links)) closeFd(l.fd);
  return set.maps as Record<N, BpfMap>;
}

/**
 * Load and attach the enforcement programs (or reuse the pinned ones), pin maps and links under
 * /sys/fs/bpf/krsi/enforce/, set config.krsi_tgid = selfPid. Throws EnforcementUnavailable when BPF LSM
 * is not active, BpfError when loading fails.
 */
/** the initial (host) pid namespace's inode number, fixed by the kernel (PROC_PID_INIT_INO) */
const HOST_PID_NS = 0xeffffffc;

/** why krsi's pids mean nothing to the kernel here, or undefined: in a pid namespace other than the host's,
 *  process.pid is that namespace's number, while the programs compare host tgids (krsi would exempt an
 *  unrelated host process and not itself, and pid verdicts would land on the wrong processes). Told by the
 *  namespace's inode, which a container's own /proc cannot hide (its NSpid line can) */
export function pidNamespaceProblem(link = '/proc/self/ns/pid'): string | undefined {
  let ns: string;
  try {
    ns = readlinkSync(link);
  } catch {
    return undefined; // no /proc: nothing to tell
  }
  const ino = Number(/^pid:\[(\d+)\]$/.exec(ns)?.[1]);
  return ino && ino !== HOST_PID_NS ? `krsi runs in a pid namespace other than the host's (${ns}): run it in the host's pid namespace (hostPID) to enforce` : undefined;
}

export async function loadEnforcement(o: LoadOptions): Promise<EnforcementHandle> {
  const ns = pidNamespaceProblem();
  if (ns) throw new EnforcementUnavailable(`krsi: enforcement unavailable: ${ns}`);
  const why = lsmUnavailable();
  if (why) throw new EnforcementUnavailable(`krsi: enforcement unavailable: ${why}`);
  const s = supported();
  if (!s.lsmLoads) {
    const lsm = s.reasons.filter((r) => /LSM|root|libbpf|BTF/.test(r));
    throw new EnforcementUnavailable(`krsi: enforcement unavailable: ${lsm.join('; ') || 'LSM programs do not load on this kernel'}`);
  }
  ensureBpffs();
  securePinDir(ENFORCE_PIN_DIR); // refuses (exit 3) a directory someone else could change, before anything is pinned
  let reused = false;
  const spec = enforceSpec();
  const build = buildOf(ensureObject('enforce'));
  let { set, bad } = o.reload ? { set: undefined, bad: [] as BadPin[] } : openPinSet(spec);
  if (set && markedBuild() !== build) {
    log.info({ dir: ENFORCE_PIN_DIR, attached: markedBuild() ?? 'unknown', build }, 'the attached programs are from another build of enforce.o: reloading them');
    closePinSet(set);
    set = undefined;
  }
  if (set) {
    reused = true;
    log.info({ dir: ENFORCE_PIN_DIR }, 'reusing pinned enforcement programs and maps (checked with the kernel)');
  } else {
    const wrong = bad.filter((b) => b.why !== 'missing');
    if (wrong.length) log.warn({ pins: wrong }, 'replacing enforcement pins that do not check out with the kernel');
    // a map pin that does not check out is dropped, so libbpf creates the map afresh (verdicts come back from the store)
    for (const b of wrong) if ((Object.values(MAP_PINS) as string[]).includes(b.path)) unpinPath(b.path);
    const fresh = pinFileProblem(MAP_PINS.config) === 'missing';
    ensureTracefs();
    const obj = BpfObject.open(ensureObject('enforce'));
    try {
      // libbpf reuses a map already pinned at its path (verdicts survive a restart), else creates and pins it
      for (const m of MAP_NAMES) obj.setPinPath(m, MAP_PINS[m]);
      obj.load();
      for (const p of PROG_NAMES) {
        obj.attach(p);
        unpinPath(LINK_PINS[p]); // a stale link from an older load: replaced (its program detaches)
        obj.pinLink(p, LINK_PINS[p]);
      }
      if (fresh) obj.map('config').update(CONFIG_KEY, encodeConfig({ krsi_tgid: o.selfPid, mprotect_limit: 0, module_mode: 0, enforce: 1 }));
    } catch (e) {
      // leave nothing half-attached: unpin the links this attempt made (maps keep their verdicts)
      for (const p of PROG_NAMES) unpinPath(LINK_PINS[p]);
      unpinPath(BUILD_MARK);
      try {
        rmdirSync(ENFORCE_PIN_DIR); // only when empty (libbpf unpins the maps it pinned in a failed load)
      } catch {
        // not empty: maps pinned by an earlier krsi keep their verdicts
      }
      throw e;
    } finally {
      obj.close(); // pinned links stay attached, pinned maps stay
    }
    unpinPath(BUILD_MARK);
    symlinkSync(build, BUILD_MARK);
    log.info({ dir: ENFORCE_PIN_DIR, programs: PROG_NAMES.length, build }, 'enforcement programs attached and pinned');
    ({ set, bad } = openPinSet(spec));
    if (!set) throw new PinRefused(`krsi: the enforcement pins do not check out after loading: ${listBad(bad)}`);
  }
  const pins: PinSet = set;
  const maps = pins.maps;
  const timer = setInterval(() => keepPinned(pins), PIN_CHECK_MS);
  timer.unref();
  const handle: EnforcementHandle = {
    maps,
    reused,
    config: () => decodeConfig(maps.config.lookup(CONFIG_KEY)!),
    setConfig(c) {
      const next = { ...handle.config(), ...c };
      maps.config.update(CONFIG_KEY, encodeConfig(next));
      return next;
    },
    onDenied(cb, ruleName) {
      const rb = new RingBuffer((data) => {
        const ev = decodeDenied(data, ruleName);
        if (ev) cb(ev);
      });
      rb.add(maps.denied_events);
      rb.start();
      // deliver what is already in the ring before stopping (the poll callback may not have run yet)
      return () => {
        rb.drainAll();
        return rb.stop();
      };
    },
    close() {
      clearInterval(timer);
      keepPinned(pins); // a pin removed since the last check: pinned again before the link is let go
      closePinSet(pins);
    },
  };
  handle.setConfig(o.selfPid ? { ...o.config, krsi_tgid: o.selfPid } : { ...o.config });
  return handle;
}

/** is enforcement pinned (programs attached through their pinned links)? */
export function enforcementLoaded(): boolean {
  return allLinksPinned();
}

/** unpin every link (detaching the programs) and map under /sys/fs/bpf/krsi/enforce; returns how many pins went */
export function unloadEnforcement(): number {
  let n = 0;
  for (const p of PROG_NAMES) if (unpinPath(LINK_PINS[p])) n++;
  for (const m of MAP_NAMES) if (unpinPath(MAP_PINS[m])) n++;
  unpinPath(BUILD_MARK);
  // the pin dir, then its parent /sys/fs/bpf/krsi when nothing else is pinned there
  for (const dir of [ENFORCE_PIN_DIR, dirname(ENFORCE_PIN_DIR)]) {
    try {
      rmdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY') break;
      if (code !== 'ENOENT') throw new BpfError(`rmdir ${dir}`, (e as NodeJS.ErrnoException).errno ?? 1);
    }
  }
  if (n) log.info({ dir: ENFORCE_PIN_DIR, pins: n }, 'enforcement unpinned');
  return n;
}
