// One writer per lmdb log: a writer holds an exclusive flock(2) on <log>/krsi.lock, which holds its pid.
// lmdb lets several processes write one environment, but two LogWriters would each number events
// from the count they saw at open and overwrite each other's blocks. The kernel drops a flock when
// its holder exits (however it dies), so a stale lock file (a dead pid) is simply taken over.
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';

const LOCK_EX = 2;
const LOCK_NB = 4;
let flock: ((fd: number, op: number) => number) | undefined;

/** the lock file of a log directory */
export const lockFile = (log: string) => join(log, 'krsi.lock');

/** a held writer lock; release() drops it (closing the file) */
export interface WriterLock {
  release(): void;
}

/** takes the writer lock of `log` (a directory), or throws naming the process that holds it */
export function lockLog(log: string): WriterLock {
  flock ??= koffi.load('libc.so.6').func('int flock(int, int)') as (fd: number, op: number) => number;
  const file = lockFile(log);
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeSync(fd);
    let holder = '';
    try {
      holder = readFileSync(file, 'utf8').trim();
    } catch {
      // gone meanwhile: the message says so
    }
    const who = /^\d+$/.test(holder) ? (Number(holder) === process.pid ? `this process (pid ${holder})` : `pid ${holder}`) : 'another process';
    throw new Error(`${log}: the log is being written by ${who} (it holds ${file}); one writer per log: wait for it to finish or stop it`);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
  return { release: () => closeSync(fd) };
}
