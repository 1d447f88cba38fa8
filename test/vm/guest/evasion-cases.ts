// Runs inside the VM (test/vm/evasion.test.ts boots it once per kernel): each area of issue 11's evasions
// (test/vm/guest/evasion/<area>.ts) sets up what it needs, runs its techniques and their negatives, tears
// down, and returns what it observed; everything goes to <results>/results.json for the host to assert.
// An area that throws is recorded with its error and the others still run.
// Usage: node evasion-cases.js RESULTS_DIR   (KRSI_EVASION_AREAS="exec memory" narrows the run)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AREAS } from './evasion/index.ts';

const [resultsDir] = process.argv.slice(2);
const only = (process.env.KRSI_EVASION_AREAS ?? '').split(/[\s,]+/).filter(Boolean);
const results: Record<string, unknown> = {};
for (const [name, run] of Object.entries(AREAS)) {
  if (only.length && !only.includes(name)) continue;
  const t0 = Date.now();
  try {
    results[name] = { ok: true, ms: 0, ...(await run(join(resultsDir, name))) };
  } catch (e) {
    results[name] = { ok: false, error: (e as Error)?.stack ?? String(e) };
  }
  (results[name] as { ms: number }).ms = Date.now() - t0;
  writeFileSync(join(resultsDir, 'results.json'), JSON.stringify(results, null, 1));
}
writeFileSync(join(resultsDir, 'results.json'), JSON.stringify(results, null, 1));
process.exit(0);
