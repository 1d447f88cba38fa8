// The pins of /sys/fs/bpf/krsi/enforce/ as one set, never trusted for being there: each map and link pin is
// checked with the kernel against what bpf/enforce.bpf.c defines (map type, name, key/value size, entries;
// link type, program name and type, attach point), and every pinned map must be one the linked programs
// use (an impostor map of the right shape is not). A set that checks out is held open while krsi runs: its
// link fds keep the programs attached even if a pin is unlinked, and keepPinned() pins it again.
import { BpfMap, closeFd, linkInfo, openPin, pinFd, progInfoById, type BpfObject } from '../bpf/libbpf.ts';
import { pinFileProblem } from '../bpf/pins.ts';
import { childLogger } from '../lib/logger.ts';
import { LINK_PINS, MAP_NAMES, MAP_PINS, PROG_NAMES, type MapName, type ProgName } from './maps.ts';

const log = childLogger('enforce');

/** what the enforcement object defines: every pin must match it */
export interface PinSpec {
  maps: Record<MapName, ReturnType<BpfObject['mapSpec']>>;
  progs: Record<ProgName, ReturnType<BpfObject['progSpec']>>;
}

export function pinSpec(obj: BpfObject): PinSpec {
  return {
    maps: Object.fromEntries(MAP_NAMES.map((m) => [m, obj.mapSpec(m)])) as PinSpec['maps'],
    progs: Object.fromEntries(PROG_NAMES.map((p) => [p, obj.progSpec(p)])) as PinSpec['progs'],
  };
}

/** a pin that does not check out: its path and why ('missing' when there is none) */
export interface BadPin { path: string; why: string }

/** the verified set, held open */
export interface PinSet {
  maps: Record<MapName, BpfMap>;
  /** link fds: the programs stay attached while these are open, pinned or not */
  links: Record<ProgName, { fd: number; id: number }>;
}

const name15 = (s: string) => s.slice(0, 15); // BPF_OBJ_NAME_LEN

function mapWhy(m: BpfMap, s: PinSpec['maps'][MapName]): string | undefined {
  const got = `${m.name} type ${m.type} key ${m.keySize} value ${m.valueSize} entries ${m.maxEntries}`;
  const want = `${name15(s.name)} type ${s.type} key ${s.keySize} value ${s.valueSize} entries ${s.maxEntries}`;
  return got === want ? undefined : `map ${got}, want ${want}`;
}

const errorWhy = (e: unknown) => ((e as { errno?: number }).errno === 2 ? 'missing' : (e as Error).message.replace(/^krsi: /, ''));

/** open and verify every pin; { set } when all check out, else { bad } (everything opened is closed) */
export function openPinSet(spec: PinSpec, names: readonly MapName[] = MAP_NAMES): { set?: PinSet; bad: BadPin[] } {
  const bad: BadPin[] = [];
  const maps = {} as Record<MapName, BpfMap>;
  const links = {} as Record<ProgName, { fd: number; id: number }>;
  const used = new Set<number>();
  for (const p of PROG_NAMES) {
    const path = LINK_PINS[p];
    let fd = -1;
    try {
      fd = openPin(path, 'link');
      const info = linkInfo(fd);
      const prog = progInfoById(info.progId);
      const want = spec.progs[p];
      const got = `program ${prog.name} type ${prog.type} on ${info.target ?? `link type ${info.type}`}`;
      const expect = `program ${name15(want.name)} type ${want.type} on ${want.section}`;
      if (got !== expect) throw new Error(`${got}, want ${expect}`);
      for (const id of prog.mapIds) used.add(id);
      links[p] = { fd, id: info.id };
    } catch (e) {
      if (fd >= 0) closeFd(fd);
      bad.push({ path, why: errorWhy(e) });
    }
  }
  for (const m of names) {
    const path = MAP_PINS[m];
    try {
      maps[m] = BpfMap.fromPinned(path);
      const why = mapWhy(maps[m], spec.maps[m]);
      if (why) throw new Error(why);
    } catch (e) {
      maps[m]?.close();
      delete maps[m];
      bad.push({ path, why: errorWhy(e) });
    }
  }
  // a map of the right shape that no linked program uses is an impostor: verdicts written there deny nothing
  if (!bad.length) {
    for (const m of names) if (!used.has(maps[m].id)) bad.push({ path: MAP_PINS[m], why: `map id ${maps[m].id} is not used by the attached programs` });
  }
  if (!bad.length) return { set: { maps, links }, bad };
  closePinSet({ maps, links });
  return { bad };
}

export function closePinSet(s: PinSet): void {
  for (const m of Object.values<BpfMap>(s.maps)) m.close();
  for (const l of Object.values<{ fd: number }>(s.links)) closeFd(l.fd);
  for (const k of Object.keys(s.links)) delete s.links[k as ProgName];
}

/**
 * Pins of the held set that someone removed are pinned again (the objects lived on through the held fds).
 * A link pin that now holds another link (a reload by another krsi) is left alone and ours is let go.
 */
export function keepPinned(s: PinSet): void {
  for (const p of Object.keys(s.links) as ProgName[]) {
    const path = LINK_PINS[p];
    const l = s.links[p];
    try {
      const why = pinFileProblem(path);
      if (why === 'missing') {
        pinFd(l.fd, path, `link ${p}`);
        log.warn({ path }, 'a link pin was removed while krsi runs: the program stayed attached (krsi holds the link) and is pinned again');
      } else if (!why) {
        const fd = openPin(path, 'link');
        const id = linkInfo(fd).id;
        closeFd(fd);
        if (id !== l.id) {
          closeFd(l.fd);
          delete s.links[p];
          log.info({ path, held: l.id, pinned: id }, 'another link is pinned for this program now (a reload): letting ours go');
        }
      } else {
        log.error({ path, why }, 'a link pin was replaced by something that is not a pin: krsi keeps the program attached while it runs');
      }
    } catch (e) {
      log.error({ err: e, path }, 'cannot check or re-pin a link pin');
    }
  }
  for (const m of Object.values<BpfMap>(s.maps)) {
    const path = m.pinPath;
    if (!path || pinFileProblem(path) !== 'missing') continue;
    try {
      m.repin();
      log.warn({ path }, 'a map pin was removed while krsi runs: pinned again');
    } catch (e) {
      log.error({ err: e, path }, 'cannot re-pin a map');
    }
  }
}
