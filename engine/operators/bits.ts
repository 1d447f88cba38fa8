// bit tests on non-negative integers up to 2^53 (JavaScript's bitwise operators only see 32 bits)
import { badValue, type ValueProblem } from './types.ts';

const TWO32 = 4294967296;

export function isBits(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** a & b as a number */
export function and(a: number, b: number): number {
  if (a < 0x80000000 && b < 0x80000000) return a & b;
  const lo = ((a % TWO32) & (b % TWO32)) >>> 0;
  const hi = (Math.floor(a / TWO32) & Math.floor(b / TWO32)) >>> 0;
  return hi * TWO32 + lo;
}

export function checkBits(v: unknown): ValueProblem | undefined {
  return isBits(v) ? undefined : badValue('the value must be a non-negative integer bit mask');
}
