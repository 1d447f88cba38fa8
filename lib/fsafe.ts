// Path safety for what krsi keeps on disk as root: event logs, the verdict store, state directories.
// They hold other users' environment values, and lmdb maps them (a file another user can cut while
// it is mapped kills krsi with SIGBUS). So a path is refused when it is a symlink, when it or any
// directory above it is owned by someone other than root (or the user running krsi), or when a
// directory above it is group/world-writable without the sticky bit (anyone could swap what is in
// it); what krsi creates is 0700 (directories) and 0600 (files).
import { chmodSync, lstatSync, mkdirSync, realpathSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** a refused path; exitCode: 1 for logs, 3 for the state directory (the CLI's codes) */
export class UnsafePathError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface SafeOptions {
  /** what the path is, for messages ("event log", "state directory") */
  what: string;
  /** exit code of the error (1 logs, 3 state) */
  exitCode: number;
}

const trustedUid = (uid: number) => uid === 0 || uid === process.geteuid?.();

/** lstat, or undefined when nothing is there (any other error throws) */
export function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function refuse(path: string, why: string, o: SafeOptions): never {
  throw new UnsafePathError(`${path}: ${o.what} refused: ${why}`, o.exitCode);
}

/** a directory (or a symlink on the way) that others could change: refused */
function checkAncestor(path: string, d: string, o: SafeOptions): void {
  const st = lstatSync(d);
  if (!trustedUid(st.uid)) refuse(path, `${d} is owned by uid ${st.uid}, not root`, o);
  // a symlink's own mode is always 0777: only its owner and its directory count
  if (!st.isSymbolicLink() && st.mode & 0o022 && !(st.mode & 0o1000)) refuse(path, `${d} is writable by others (mode ${(st.mode & 0o7777).toString(8)}) without the sticky bit`, o);
}

/** the directories holding `path` must be trusted: see the header. Both chains are checked: the path
 *  as given (a symlink on the way, and the directory holding it, must be root's too: else its owner
 *  could point it elsewhere after the check) and the resolved one (where the files really are). */
function checkParents(path: string, o: SafeOptions): void {
  let dir = dirname(resolve(path));
  // the nearest existing directory (a missing state directory is created below it)
  while (lstatOrUndefined(dir) === undefined && dir !== dirname(dir)) dir = dirname(dir);
  for (let d = dir; ; d = dirname(d)) {
    checkAncestor(path, d, o);
    if (d === dirname(d)) break;
  }
  const real = realpathSync(dir);
  if (real !== dir)
    for (let d = real; ; d = dirname(d)) {
      checkAncestor(path, d, o);
      if (d === dirname(d)) break;
    }
}

/** checks an existing file or directory itself: no symlink, owned by root (or us), not writable by others */
function checkItself(path: string, st: Stats, o: SafeOptions): void {
  if (st.isSymbolicLink()) refuse(path, 'it is a symbolic link', o);
  if (!trustedUid(st.uid)) refuse(path, `it is owned by uid ${st.uid}, not root`, o);
  if (st.mode & 0o022) refuse(path, `it is writable by others (mode ${(st.mode & 0o7777).toString(8)})`, o);
}

/**
 * Checks a path krsi reads, maps or writes (a log directory, the store's directory, a file in one).
 * Returns its lstat, or undefined when it does not exist (the parents are checked either way).
 */
export function checkPath(path: string, o: SafeOptions): Stats | undefined {
  checkParents(path, o);
  const st = lstatOrUndefined(path);
  if (st) checkItself(path, st, o);
  return st;
}

/** checks `dir` as checkPath does and creates it 0700 when missing (parents too); an existing one
 *  that we own is tightened to 0700 (older krsi versions made them 0755) */
export function secureDir(dir: string, o: SafeOptions): void {
  const st = checkPath(dir, o);
  if (st && !st.isDirectory()) refuse(dir, 'it is not a directory', o);
  if (!st) mkdirSync(dir, { recursive: true, mode: 0o700 });
  else if (st.uid === process.geteuid?.() && (st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/** files an lmdb environment created (lmdb-js creates them 0644): made 0600 when they are ours */
export function secureFiles(paths: string[], o: SafeOptions): void {
  for (const p of paths) {
    const st = lstatOrUndefined(p);
    if (!st) continue;
    checkItself(p, st, o);
    if (!st.isFile()) refuse(p, 'it is not a regular file', o);
    if (st.uid === process.geteuid?.() && (st.mode & 0o777) !== 0o600) chmodSync(p, 0o600);
  }
}
