// What the enforcer writes its entries through: the pinned BPF maps (readable with
// `bpftool map dump pinned /sys/fs/bpf/krsi/enforce/<map>`), or memory for tests and dry runs.
import type { BpfMap } from '../bpf/libbpf.ts';
import {
  CONFIG_KEY, decodeConfig, decodeInodeKey, decodeTgidKey, decodeVerdict, encodeConfig, encodeInodeKey, encodeTgidKey, encodeVerdict,
  type KConfig, type KVerdict,
} from './maps.ts';
import { encodeFileStamp } from '../bpf/abi.ts';
import { enforcementLoaded, loadEnforcement, openPinned, type EnforcementHandle } from './programs.ts';
import { keyString, type Entry, type EntryKey, type InodeMap } from './verdict-keys.ts';

/** what the enforcer needs from the maps */
export interface MapWriter {
  put(key: EntryKey, value: KVerdict): void;
  /** one entry (what the kernel holds), or undefined */
  get(key: EntryKey): KVerdict | undefined;
  delete(key: EntryKey): void;
  config(c: KConfig): void;
  /** an allowlisted module file's ctime (module_stamp; undefined: remove it) */
  stamp?(key: EntryKey, ctimeNs: bigint | undefined): void;
  /** current contents (for `krsi verdicts list`) */
  dump(): { entries: Entry[]; config?: KConfig };
  close(): void;
}

/** an in-memory MapWriter, for translation tests and dry runs (it enforces nothing) */
export class MemoryMapWriter implements MapWriter {
  readonly entries = new Map<string, Entry>();
  cfg?: KConfig;
  writes = 0;
  put(key: EntryKey, value: KVerdict): void { this.entries.set(keyString(key), { key, value: { ...value } }); this.writes++; }
  get(key: EntryKey): KVerdict | undefined { const e = this.entries.get(keyString(key)); return e && { ...e.value }; }
  delete(key: EntryKey): void { this.entries.delete(keyString(key)); this.writes++; }
  config(c: KConfig): void { this.cfg = { ...c }; }
  readonly stamps = new Map<string, bigint>();
  stamp(key: EntryKey, ctimeNs: bigint | undefined): void { if (ctimeNs === undefined) this.stamps.delete(keyString(key)); else this.stamps.set(keyString(key), ctimeNs); }
  dump() { return { entries: [...this.entries.values()], config: this.cfg }; }
  close(): void {}
}

/** the BPF maps a PinnedMapWriter writes (pinned under /sys/fs/bpf/krsi/enforce, or created by a test) */
export type VerdictMaps = Record<'deny_tgid' | InodeMap | 'config', BpfMap> & { module_stamp?: BpfMap };

/** writes the enforcement maps with the bpf/abi.ts encoders */
export class PinnedMapWriter implements MapWriter {
  /** manageConfig false: leave config alone (`krsi verdicts` beside a running `krsi run`) */
  constructor(readonly maps: VerdictMaps, private readonly manageConfig = true, private readonly onClose?: () => void) {}

  private encodeKey(k: EntryKey): Buffer {
    return k.map === 'deny_tgid' ? encodeTgidKey(k.tgid) : encodeInodeKey(k);
  }
  put(key: EntryKey, value: KVerdict): void {
    this.maps[key.map].update(this.encodeKey(key), encodeVerdict(value));
  }
  get(key: EntryKey): KVerdict | undefined {
    const v = this.maps[key.map].lookup(this.encodeKey(key));
    return v && decodeVerdict(v);
  }
  delete(key: EntryKey): void {
    this.maps[key.map].delete(this.encodeKey(key));
  }
  config(c: KConfig): void {
    if (this.manageConfig) this.maps.config.update(CONFIG_KEY, encodeConfig(c));
  }
  stamp(key: EntryKey, ctimeNs: bigint | undefined): void {
    const m = this.maps.module_stamp;
    if (!m || key.map === 'deny_tgid') return;
    if (ctimeNs === undefined) m.delete(encodeInodeKey(key));
    else m.update(encodeInodeKey(key), encodeFileStamp(ctimeNs));
  }
  dump(): { entries: Entry[]; config?: KConfig } {
    const entries: Entry[] = [];
    for (const map of ['deny_tgid', 'deny_inode', 'module_allow', 'module_deny'] as const) {
      const m = this.maps[map];
      for (const k of m.keys()) {
        const v = m.lookup(k);
        if (!v) continue;
        const key: EntryKey = map === 'deny_tgid' ? { map, tgid: decodeTgidKey(k) } : { map, ...decodeInodeKey(k) };
        entries.push({ key, value: decodeVerdict(v) });
      }
    }
    const c = this.maps.config.lookup(CONFIG_KEY);
    return { entries, config: c ? decodeConfig(c) : undefined };
  }
  close(): void {
    if (this.onClose) this.onClose();
    else for (const m of Object.values(this.maps)) m.close();
  }
}

const VERDICT_MAPS = ['deny_tgid', 'deny_inode', 'module_allow', 'module_deny', 'config'] as const;

/** a writer on the already pinned verdict maps that leaves config alone (`krsi verdicts` beside a
 *  running `krsi run`); throws when they are not pinned */
export function pinnedVerdictWriter(): PinnedMapWriter {
  return new PinnedMapWriter(openPinned(VERDICT_MAPS), false);
}

/** the pinned enforcement maps: loads and attaches the programs when they are not pinned yet
 *  (enforcers/programs.ts; throws EnforcementUnavailable without BPF LSM), else reuses the pins */
export async function openPinnedMaps(o: { selfPid: number; manageConfig?: boolean }): Promise<{ writer: PinnedMapWriter; handle?: EnforcementHandle }> {
  if (o.manageConfig === false && enforcementLoaded()) return { writer: pinnedVerdictWriter() };
  const handle = await loadEnforcement({ selfPid: o.manageConfig === false ? 0 : o.selfPid });
  return { writer: new PinnedMapWriter(handle.maps, o.manageConfig !== false, () => handle.close()), handle };
}
