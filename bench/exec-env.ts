// bench/exec-env: what the exec signal's work (issue 11: exec facts, the whole environment walked for
// every LD_* and watched variable, the ld.so option scan) costs an exec, on this host.
// A static loop (test/live/fixtures/exec-evasion.c `bench`) forks and execs a static program that exits at
// once, N times, with 0, 100, 2000 and 16000 filler variables in its environment; each size is timed with
// the signal programs attached and detached, alternately, in the same run. Medians of the rounds, and the
// ratio attached / detached. Figures, not assertions. Needs root (the signals load).
// usage: node --import tsx bench/exec-env.ts [--quick]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSignals } from '../signals/live.ts';

const QUICK = process.argv.includes('--quick');
const ROUNDS = QUICK ? 3 : 7;
const N = QUICK ? 300 : 1000;
const SIZES = [0, 100, 2000, 16000];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'krsi-bench-exec-'));
try {
  const fx = join(dir, 'exec-evasion');
  const src = fileURLToPath(new URL('../test/live/fixtures/exec-evasion.c', import.meta.url));
  let cc = spawnSync('cc', ['-O2', '-static', '-o', fx, src], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(cc.stderr);
  // the program exec'd: static, exits at once (no ld.so work to drown the signal's)
  const nop = join(dir, 'nop');
  writeFileSync(join(dir, 'nop.c'), 'int main(void) { return 0; }\n');
  cc = spawnSync('cc', ['-O2', '-static', '-o', nop, join(dir, 'nop.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(cc.stderr);
  const time = (nenv: number) => Number(spawnSync(fx, ['bench', String(N), String(nenv), nop], { encoding: 'utf8' }).stdout.trim());

  const off: Record<number, number[]> = {}, on: Record<number, number[]> = {};
  for (const s of SIZES) (off[s] = []), (on[s] = []);
  let events = 0;
  const attached = async () => {
    const live = await startSignals({ lostInterval: 0, modulesInterval: 0 });
    const sub = live.events$.subscribe((e) => void (e.type === 'exec' && events++));
    for (const s of SIZES) on[s].push(time(s));
    await new Promise((res) => setTimeout(res, 300)); // let the ring drain
    sub.unsubscribe();
    await live.stop();
  };
  // which goes first alternates by round (the host's load drifts)
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2) await attached();
    for (const s of SIZES) off[s].push(time(s));
    if (!(r % 2)) await attached();
  }
  console.log(`# exec cost of the signal programs: fork+execve+wait of a static no-op, ${N} per round, median of ${ROUNDS} rounds (${events} exec events seen)`);
  console.log('env strings | detached µs | attached µs | ratio | added µs');
  for (const s of SIZES) {
    const a = median(off[s]) / 1000, b = median(on[s]) / 1000;
    console.log(`${String(s).padStart(11)} | ${a.toFixed(1).padStart(11)} | ${b.toFixed(1).padStart(11)} | ${(b / a).toFixed(2).padStart(5)} | ${(b - a).toFixed(1).padStart(8)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
