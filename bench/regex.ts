// bench/regex: what linear-time rule regexes cost. For each pattern, ns per `matches` test on typical
// strings (paths, PATH-like lists, comm names, and a hostile 'aaa…!'), three ways in the same run:
//   v8     new RegExp(p).test — the operator before RE2 (the baseline; backtracks)
//   re2    re2js for every pattern
//   krsi   the operator now: V8 for the safe subset (engine/operators/regex.ts), RE2 for the rest
// Medians of --runs interleaved rounds; figures, not assertions. A hostile input that V8 would backtrack
// on for ever is skipped for v8 (shown as "-").
// usage: node --import tsx bench/regex.ts [--runs 7] [--n 200000]
import { parseArgs } from 'node:util';
import { RE2JS } from 're2js';
import { compileRegex, regexEngine } from '../engine/operators/regex.ts';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '7' }, n: { type: 'string', default: '200000' } } });
const RUNS = Number(args.runs);
const N = Number(args.n);

const INPUTS = ['/usr/lib/x86_64-linux-gnu:/opt/lib', '/tmp/.x/evil.so', 'bash', 'ncat', '/usr/bin/python3.11', '', '/dev/shm', 'LD_PRELOAD=/tmp/x'];
const PATTERNS: { p: string; note: string; hostile?: boolean }[] = [
  { p: '(^|:)(/tmp|/var/tmp|/dev/shm|/run/shm)(/|:|$)', note: 'bundled: ld-library-path-world-writable' },
  { p: '^(nc|ncat|socat)$', note: 'README example' },
  { p: '\\.so(\\.[0-9]+)*$', note: 'repetition: RE2' },
  { p: '(?i)^/tmp/', note: '(?i): RE2' },
  { p: '(a+)+$', note: 'catastrophic on "a"x26+"!" in V8', hostile: true },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function time(test: (s: string) => boolean, inputs: string[]): number {
  let hits = 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (test(inputs[i % inputs.length])) hits++;
  const ns = Number(process.hrtime.bigint() - t) / N;
  if (hits < 0) console.log(hits);
  return ns;
}

console.log(`bench/regex: ns per test, medians of ${RUNS} rounds of ${N.toLocaleString('en-US')} tests, node ${process.version}`);
console.log(`${'pattern'.padEnd(48)} ${'v8 (base)'.padStart(10)} ${'re2'.padStart(8)} ${'krsi'.padStart(8)}  engine  krsi/v8`);
for (const { p, note, hostile } of PATTERNS) {
  const inputs = hostile ? ['a'.repeat(26) + '!', 'a'.repeat(1000) + '!'] : INPUTS;
  const v8 = new RegExp(p.startsWith('(?i)') ? p.slice(4) : p, p.startsWith('(?i)') ? 'i' : '');
  const re2 = RE2JS.compile(p);
  const krsi = compileRegex(p);
  const r: Record<'v8' | 're2' | 'krsi', number[]> = { v8: [], re2: [], krsi: [] };
  for (let k = 0; k < RUNS; k++) {
    if (!hostile) r.v8.push(time((s) => v8.test(s), inputs));
    r.re2.push(time((s) => re2.test(s), inputs));
    r.krsi.push(time((s) => krsi.test(s), inputs));
  }
  const v = hostile ? NaN : median(r.v8);
  const f = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(0)).padStart(8);
  console.log(`${p.padEnd(48)} ${f(v).padStart(10)} ${f(median(r.re2))} ${f(median(r.krsi))}  ${regexEngine(krsi).padEnd(6)}  ${hostile ? '-' : (median(r.krsi) / v).toFixed(2) + 'x'}   ${note}`);
}
