// Durations in rule files: "500ms", "10s", "2m", "1h", "1d", or an integer number of nanoseconds.
// Everything inside the engine is nanoseconds of event time.

const UNIT_NS: Record<string, number> = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };
const DURATION_RE = /^([0-9]+)(ms|s|m|h|d)$/;
/** nanoseconds are exact integers up to 2^53-1: about 104 days */
const TOO_LARGE = `too large (at most ${Number.MAX_SAFE_INTEGER} ns, about 104 days)`;

export class DurationError extends Error {
  constructor(readonly input: unknown, reason: string) {
    super(`bad duration ${JSON.stringify(input)}: ${reason}`);
    this.name = 'DurationError';
  }
}

/** parse a duration into nanoseconds; throws DurationError for anything else */
export function parseDuration(d: string | number): number {
  if (typeof d === 'number') {
    if (Number.isInteger(d) && d > Number.MAX_SAFE_INTEGER) throw new DurationError(d, TOO_LARGE);
    if (!Number.isSafeInteger(d) || d < 0) throw new DurationError(d, 'a number must be a non-negative integer of nanoseconds');
    return d;
  }
  if (typeof d !== 'string') throw new DurationError(d, 'expected a string like "10s" or an integer of nanoseconds');
  const m = DURATION_RE.exec(d);
  if (!m) throw new DurationError(d, 'expected <integer><unit> with unit ms, s, m, h or d (e.g. "500ms", "10s", "2m")');
  const ns = Number(m[1]) * UNIT_NS[m[2]];
  if (!Number.isSafeInteger(ns)) throw new DurationError(d, TOO_LARGE);
  return ns;
}

/** like parseDuration, returning the error message instead of throwing */
export function checkDuration(d: unknown): string | undefined {
  try {
    parseDuration(d as string | number);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
