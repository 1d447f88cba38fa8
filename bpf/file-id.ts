// A file's identity as the kernel's hooks see it: {dev (user-space st_dev encoding), ino}. stat(2)'s device is
// not always the superblock's s_dev the hooks read (overlayfs, btrfs subvolumes); keys built from a path
// (deny lists, allowlists, package-manager inode lists, /proc seeding) go through kernelFileId.
import { readFileSync, realpathSync, statSync, statfsSync } from 'node:fs';
import koffi from 'koffi';
import { devFromKernel } from './abi.ts';

const OVERLAYFS_SUPER_MAGIC = 0x794c7630;
const BTRFS_SUPER_MAGIC = 0x9123683e;

/** statx(2) STATX_MNT_ID: the id of the mount `path` is on (as /proc/self/mountinfo's first field), or
 *  undefined when the kernel or libc cannot say (before 5.8) */
let statx: ((dirfd: number, path: string, flags: number, mask: number, buf: Buffer) => number) | undefined | null;
function mountId(path: string): number | undefined {
  if (statx === undefined) {
    try { statx = koffi.load('libc.so.6').func('int statx(int dirfd, const char *path, int flags, unsigned int mask, _Out_ uint8_t *buf)'); } catch { statx = null; }
  }
  if (!statx) return undefined;
  const STATX_MNT_ID = 0x1000, AT_FDCWD = -100, MASK_OFF = 0, MNT_ID_OFF = 144;
  const buf = Buffer.alloc(256);
  if (statx(AT_FDCWD, path, 0, STATX_MNT_ID, buf) !== 0 || !(buf.readUInt32LE(MASK_OFF) & STATX_MNT_ID)) return undefined;
  return Number(buf.readBigUInt64LE(MNT_ID_OFF));
}

/** the superblock's s_dev (user-space encoding) of the mount `path` is on, from /proc/self/mountinfo's
 *  major:minor (which is the superblock's, where stat's st_dev may not be) */
function superblockDev(path: string): number | undefined {
  const id = mountId(path);
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  let best: { point: string; dev: number } | undefined;
  const real = id === undefined ? realpathSync(path) : '';
  for (const line of lines) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const [major, minor] = f[2].split(':').map(Number);
    const dev = devFromKernel(((major << 20) | minor) >>> 0);
    if (id !== undefined) {
      if (Number(f[0]) === id) return dev;
      continue;
    }
    // no mount id: the longest mount point over the path
    const point = unescapeMount(f[4]);
    if (!(real === point || real.startsWith(point === '/' ? '/' : `${point}/`))) continue;
    if (!best || point.length >= best.point.length) best = { point, dev };
  }
  return best?.dev;
}

function unescapeMount(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The {dev, ino} (user-space st_dev encoding) under which the LSM hooks see the file at `path`, for
 * keys built from a path rather than from an event. Usually stat()'s; on overlayfs stat() reports the
 * underlying layer's (pseudo) device while the hooks see the overlay superblock's, so the device comes
 * from the overlay mount in /proc/self/mountinfo (the inode number is the same in both views). On btrfs
 * stat() reports a subvolume's own anonymous device: the superblock's comes from mountinfo too.
 */
export function kernelFileId(path: string): { dev: number; ino: number } {
  const st = statSync(path);
  const fs = statfsSync(path).type;
  // btrfs: stat() reports the subvolume's anonymous device, the hooks see the superblock's s_dev
  // (/proc/self/mountinfo's major:minor of the file's mount, found by statx's mount id). A key is then
  // {s_dev, ino}: inode numbers restart in each subvolume, so two subvolumes' files can share a key
  if (fs === BTRFS_SUPER_MAGIC) return { dev: superblockDev(path) ?? st.dev, ino: st.ino };
  if (fs !== OVERLAYFS_SUPER_MAGIC) return { dev: st.dev, ino: st.ino };
  const real = realpathSync(path);
  let best: { point: string; dev: number } | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0 || f[sep + 1] !== 'overlay') continue;
    const point = unescapeMount(f[4]);
    if (!(real === point || real.startsWith(point === '/' ? '/' : `${point}/`))) continue;
    if (best && best.point.length > point.length) continue;
    const [major, minor] = f[2].split(':').map(Number);
    best = { point, dev: devFromKernel(((major << 20) | minor) >>> 0) };
  }
  return { dev: best?.dev ?? st.dev, ino: st.ino };
}
