// Cost of the running-executable signals (issue 11) on the syscalls they follow, on this kernel: a C loop
// creates and unlinks a file (and opens one with O_TRUNC) N times, timed without krsi's signals, with them,
// and, while K extra distinct executables run, without and with them (500 more processes slow the host by
// themselves: compare on+K with off+K). Prints the median ns per create+unlink and per open(O_TRUNC) of
// several rounds and the ratios to krsi off of the same run.
//   node --import tsx bench/files.ts [--quick]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSignals, type LiveSignals } from '../signals/live.ts';

const quick = process.argv.includes('--quick');
const N = quick ? 20_000 : 100_000;
const ROUNDS = quick ? 3 : 5;
const K = 500;

const LOOP_C = `
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  double t0 = now();
  for (int i = 0; i < n; i++) { int fd = open("f", O_CREAT | O_WRONLY, 0600); close(fd); unlink("f"); }
  double t1 = now();
  for (int i = 0; i < n; i++) { int fd = open("g", O_CREAT | O_WRONLY | O_TRUNC, 0600); close(fd); }
  double t2 = now();
  printf("%f %f\\n", (t1 - t0) / n, (t2 - t1) / n);
  return 0;
}`;

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-files-'));
const procs: ChildProcess[] = [];
let live: LiveSignals | undefined;
try {
  writeFileSync(join(dir, 'loop.c'), LOOP_C);
  const cc = spawnSync('cc', ['-O2', '-o', join(dir, 'loop'), join(dir, 'loop.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(cc.stderr);
  const once = () => {
    const r = spawnSync(join(dir, 'loop'), [String(N)], { cwd: dir, encoding: 'utf8' });
    return r.stdout.trim().split(' ').map(Number);
  };
  const res: Record<string, { unlink: number[]; trunc: number[] }> = {};
  const measure = (k: string) => {
    const [u, t] = once();
    (res[k] ??= { unlink: [], trunc: [] }).unlink.push(u);
    res[k].trunc.push(t);
  };
  for (let r = 0; r < ROUNDS; r++) {
    // each round: krsi off, K more executables running (off, then on), then on without them
    measure('off');
    for (let i = 0; i < K; i++) {
      const p = join(dir, `s${i}`);
      copyFileSync('/bin/sleep', p);
      chmodSync(p, 0o755);
      procs.push(spawn(p, ['600'], { stdio: 'ignore' }));
    }
    spawnSync('sync');
    await new Promise((res2) => setTimeout(res2, 2000)); // every copy exec'd and asleep
    measure(`off+${K}`);
    live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
    measure(`on+${K}`);
    for (const p of procs.splice(0)) p.kill('SIGKILL');
    for (let i = 0; i < K; i++) rmSync(join(dir, `s${i}`), { force: true });
    spawnSync('sync');
    await new Promise((res2) => setTimeout(res2, 500));
    measure('on');
    await live.stop();
    live = undefined;
  }
  const base = { unlink: median(res.off.unlink), trunc: median(res.off.trunc) };
  console.log(`create+unlink and open(O_TRUNC), ${N} each, median of ${ROUNDS} rounds (ns per op; ratio to krsi off)`);
  for (const [k, v] of Object.entries(res)) {
    const u = median(v.unlink), t = median(v.trunc);
    console.log(`  ${k.padEnd(8)} create+unlink ${u.toFixed(0).padStart(6)} ns (x${(u / base.unlink).toFixed(2)})   open(O_TRUNC) ${t.toFixed(0).padStart(6)} ns (x${(t / base.trunc).toFixed(2)})`);
  }
} finally {
  for (const p of procs) p.kill('SIGKILL');
  await live?.stop();
  rmSync(dir, { recursive: true, force: true });
}
