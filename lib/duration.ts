// Durations: read from rule files ("500ms", "10s", "2m", "1h", "1d", or an integer number of nanoseconds)
// and written for people in the same units. Everything inside the engine is nanoseconds of event time.

/** every unit krsi reads: rule files take ms..d; --since/--until (engine/eventlog) take ns and us too */
export const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };
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

// what durations are written in: the units of rule files, largest first
const UNITS_DESC = (['d', 'h', 'm', 's', 'ms'] as const).map((u) => [u, UNIT_NS[u]] as const);

/**
 * Nanoseconds for people. Exact (the default): in the largest unit that divides it, as rule files write
 * it ("90s", "2m", "1d"; else "1500ns"). { approx: true }: in the largest unit it has one of, to a tenth
 * ("1.5m", "0.2s"), for a time that is never round (a verdict's time left).
 */
export function formatDuration(ns: number, o: { approx?: boolean } = {}): string {
  if (o.approx) {
    const [u, n] = UNITS_DESC.find(([, n]) => n > 1e6 && ns >= n) ?? ['s', 1e9];
    return `${(ns / n).toFixed(1)}${u}`;
  }
  const unit = UNITS_DESC.find(([, n]) => ns !== 0 && ns % n === 0);
  return unit ? `${ns / unit[1]}${unit[0]}` : `${ns}ns`;
}
