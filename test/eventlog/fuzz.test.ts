// Fuzzing the log readers (and a writer appending) with damaged real logs (issue 8): bit flips, truncation at many offsets,
// zeroed and swapped pages of lmdb logs; flipped bytes, cuts, deep and huge values in JSON Lines.
// Most cases run in this process (a native crash kills the test run, which is a failure too); a few
// hundred go through the real CLI, each with a timeout. Asserted: every read ends, either with its
// events or with an error naming the log (in-process), exit 0 or 1 (CLI); never a signal, a hang or an
// uncaught exception. The PRNG is seeded: a failure names the case, and the same seed replays it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogWriter, lmdbInfo, readEvents } from '../../engine/eventlog/index.ts';
import { generateEvents } from '../../bench/gen.ts';
import { krsiAsync } from '../helpers/krsi.ts';

const SEED = Number(process.env.KRSI_FUZZ_SEED ?? 8);
const LMDB_CASES = 2000;
const JSONL_CASES = 1000;
const CLI_CASES = 150;
const CLI_PARALLEL = 4;
const PS = 4096;

let dir: string;
let base: Buffer;
let baseLock: Buffer;
let lines: string[];
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'krsi-fuzz-'));
  const log = join(dir, 'base');
  const w = LogWriter.open(log);
  w.append([...generateEvents({ count: 3500, seed: 21 })]);
  await w.close();
  base = readFileSync(join(log, 'data.mdb'));
  baseLock = readFileSync(join(log, 'lock.mdb'));
  lines = [...generateEvents({ count: 300, seed: 22 })].map((e) => JSON.stringify(e));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** xorshift32: the cases are the same on every run for one seed */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

/** a damaged copy of the base log's data.mdb, and what was done to it */
function damageLmdb(r: (n: number) => number): [Buffer, string] {
  const b = Buffer.from(base);
  const pages = b.length / PS;
  // half of the damage lands in the first pages (metas, tree pages), half anywhere (mostly blocks)
  const at = () => (r(2) ? r(Math.min(b.length, 8 * PS)) : r(b.length));
  switch (r(7)) {
    case 0: {
      const o = at();
      b[o] ^= 1 << r(8);
      return [b, `bit flip at ${o}`];
    }
    case 1: {
      const flips = 2 + r(8);
      for (let i = 0; i < flips; i++) b[at()] ^= 1 << r(8);
      return [b, `${flips} bit flips`];
    }
    case 2: {
      const n = r(3) ? r(b.length) : r(pages) * PS;
      return [b.subarray(0, n), `cut at ${n}`];
    }
    case 3: {
      const p = r(pages);
      b.fill(0, p * PS, (p + 1) * PS);
      return [b, `page ${p} zeroed`];
    }
    case 4: {
      const p = r(pages);
      const q = r(pages);
      const t = Buffer.from(b.subarray(p * PS, (p + 1) * PS));
      b.copy(b, p * PS, q * PS, (q + 1) * PS);
      t.copy(b, q * PS);
      return [b, `pages ${p} and ${q} swapped`];
    }
    case 5: {
      const o = at();
      const n = 1 + r(64);
      for (let i = 0; i < n && o + i < b.length; i++) b[o + i] = r(256);
      return [b, `${n} random bytes at ${o}`];
    }
    default: {
      const o = at();
      const v = [0xff, 0x00, 0x7f, 0x80][r(4)];
      b.fill(v, o, Math.min(b.length, o + 8));
      return [b, `8 bytes of 0x${v.toString(16)} at ${o}`];
    }
  }
}

const bigEnv = JSON.stringify(Object.fromEntries(Array.from({ length: 100_000 }, (_, k) => [`K${k}`, 'x'])));

/** a damaged JSON Lines text (as bytes) and what was done to it */
function damageJsonl(r: (n: number) => number): [Buffer, string] {
  const ls = [...lines];
  const i = r(ls.length);
  switch (r(7)) {
    case 0: {
      const b = Buffer.from(ls.join('\n') + '\n');
      const o = r(b.length);
      b[o] ^= 1 << r(8);
      return [b, `bit flip at ${o}`];
    }
    case 1: {
      const b = Buffer.from(ls.join('\n') + '\n');
      const n = r(b.length);
      return [b.subarray(0, n), `cut at ${n}`];
    }
    case 2: {
      const depth = [100, 2000, 5000, 100_000][r(4)];
      ls[i] = ls[i].slice(0, -1) + `,"deep":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      return [Buffer.from(ls.join('\n')), `line ${i + 1} nested ${depth} deep`];
    }
    case 3: {
      ls[i] = ls[i].slice(0, -1) + `,"env":${bigEnv}}`;
      return [Buffer.from(ls.join('\n')), `line ${i + 1} with 100k env keys`];
    }
    case 4: {
      const j = r(ls.length);
      [ls[i], ls[j]] = [ls[j], ls[i]];
      return [Buffer.from(ls.join('\n')), `lines ${i + 1} and ${j + 1} swapped`];
    }
    case 5: {
      const junk = Buffer.from(Array.from({ length: 1 + r(40) }, () => r(256)));
      return [Buffer.concat([Buffer.from(ls.slice(0, i).join('\n') + '\n'), junk, Buffer.from('\n' + ls.slice(i).join('\n'))]), `${junk.length} random bytes before line ${i + 1}`];
    }
    default: {
      ls[i] = ls[i].replace(/"ts":\d+/, `"ts":${['1e308', '-1', '3.3e-297', '"1"', 'null', '9007199254740993'][r(6)]}`);
      return [Buffer.from(ls.join('\n')), `line ${i + 1} with a bad ts`];
    }
  }
}

/** reads a whole log in this process: 'ok', or the error, which must name the log */
async function readAll(path: string, skipBad: boolean): Promise<void> {
  try {
    for await (const _ of readEvents(path, { skipBad, batch: 512 })) void _;
  } catch (e) {
    assert.ok(e instanceof Error, `threw a non-Error: ${String(e)}`);
    assert.ok(e.message.includes(path), `the error names the log: ${e.stack}`);
  }
}

describe('fuzz: damaged logs end in their events or a located error', () => {
  test(`lmdb logs, in process: ${LMDB_CASES} cases`, async () => {
    const r = prng(SEED);
    for (let c = 0; c < LMDB_CASES; c++) {
      const [bytes, what] = damageLmdb(r);
      const log = join(dir, `l${c}`);
      mkdirSync(log, { mode: 0o700 });
      writeFileSync(join(log, 'data.mdb'), bytes, { mode: 0o600 });
      if (c % 10 === 0) writeFileSync(join(log, 'lock.mdb'), c % 20 ? Buffer.alloc(0) : Buffer.alloc(baseLock.length), { mode: 0o600 });
      try {
        await readAll(log, c % 2 === 0);
        try {
          lmdbInfo(log);
        } catch (e) {
          assert.ok((e as Error).message.includes(log), `lmdbInfo's error names the log: ${(e as Error).stack}`);
        }
        // a writer appending to it (it also reads the free-page lists)
        if (c % 4 === 1) {
          try {
            const w = LogWriter.open(log);
            try {
              w.append([...generateEvents({ count: 50, seed: c, startTs: 8e15 })]);
            } finally {
              await w.close();
            }
          } catch (e) {
            assert.ok(e instanceof Error && e.message.includes(log), `the writer's error names the log: ${(e as Error).stack}`);
          }
        }
      } catch (e) {
        throw new Error(`seed ${SEED} case ${c} (${what}): ${(e as Error).message}`);
      }
      rmSync(log, { recursive: true });
    }
  });

  test(`JSON Lines, in process: ${JSONL_CASES} cases`, async () => {
    const r = prng(SEED + 1);
    for (let c = 0; c < JSONL_CASES; c++) {
      const [bytes, what] = damageJsonl(r);
      const file = join(dir, `j${c}.jsonl`);
      writeFileSync(file, bytes);
      try {
        await readAll(file, c % 2 === 0);
      } catch (e) {
        throw new Error(`seed ${SEED + 1} case ${c} (${what}): ${(e as Error).message}`);
      }
      rmSync(file);
    }
  });

  test(`the CLI (log info/export/import, replay): ${CLI_CASES} cases, exit 0 or 1 only, each with a timeout`, async () => {
    const r = prng(SEED + 2);
    const cases: { args: string[]; what: string }[] = [];
    for (let c = 0; c < CLI_CASES; c++) {
      const skip = r(2) ? ['--skip-bad'] : [];
      if (c % 3 === 2) {
        const [bytes, what] = damageJsonl(r);
        const file = join(dir, `cj${c}.jsonl`);
        writeFileSync(file, bytes);
        const cmd = [['replay', file, '--format', 'json', ...skip], ['log', 'import', ...skip, file, join(dir, `ci${c}`)], ['log', 'info', file, ...skip]][r(3)];
        cases.push({ args: cmd, what: `${cmd.slice(0, 2).join(' ')} of JSON Lines, ${what}` });
      } else {
        const [bytes, what] = damageLmdb(r);
        const log = join(dir, `cl${c}`);
        mkdirSync(log, { mode: 0o700 });
        writeFileSync(join(log, 'data.mdb'), bytes, { mode: 0o600 });
        copyFileSync(join(dir, 'base', 'lock.mdb'), join(log, 'lock.mdb'));
        const src = join(dir, `cs${c}.jsonl`);
        writeFileSync(src, lines[0].replace(/"ts":\d+/, '"ts":9000000000000000') + '\n');
        const cmd = [['log', 'info', log, ...skip], ['log', 'export', log, ...skip], ['replay', log, '--format', 'json', ...skip], ['log', 'import', src, log]][r(4)];
        cases.push({ args: cmd, what: `${cmd.slice(0, 2).join(' ')} of lmdb, ${what}` });
      }
    }
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const k = next++;
        const { args, what } = cases[k];
        const res = await krsiAsync(args, 60_000);
        if (res.signal || (res.code !== 0 && res.code !== 1) || /\n\s+at /.test(res.stderr)) failures.push(`case ${k} (${what}): exit ${res.code} signal ${res.signal}: ${res.stderr.slice(-400)}`);
      }
    };
    await Promise.all(Array.from({ length: CLI_PARALLEL }, worker));
    assert.deepEqual(failures, [], `seed ${SEED + 2}`);
  });
});
