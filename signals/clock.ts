// CLOCK_BOOTTIME in nanoseconds, the clock of live event timestamps (bpf_ktime_get_boot_ns).
// Node has no CLOCK_BOOTTIME: clock_gettime is called through koffi once in a while and the offset to
// process.hrtime (CLOCK_MONOTONIC) is kept, so bootNs() costs one hrtime call.
import koffi from 'koffi';

const CLOCK_BOOTTIME = 7;
let clockGettime: ((clk: number, ts: Buffer) => number) | undefined;
let offset: bigint | undefined;
let offsetAt = 0;

function rawBootNs(): bigint {
  clockGettime ??= koffi.load('libc.so.6').func('int clock_gettime(int clk, void *ts)') as (clk: number, ts: Buffer) => number;
  const b = Buffer.alloc(16);
  if (clockGettime(CLOCK_BOOTTIME, b) !== 0) throw new Error('clock_gettime(CLOCK_BOOTTIME) failed');
  return b.readBigInt64LE(0) * 1_000_000_000n + b.readBigInt64LE(8);
}

/** CLOCK_BOOTTIME now, integer ns (the offset to CLOCK_MONOTONIC is refreshed every second: suspend moves it) */
export function bootNs(): number {
  const mono = process.hrtime.bigint();
  if (offset === undefined || mono - BigInt(offsetAt) > 1_000_000_000n) {
    offset = rawBootNs() - process.hrtime.bigint();
    offsetAt = Number(mono);
  }
  return Number(mono + offset);
}
