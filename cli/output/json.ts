// JSON Lines output: one object per line with `kind` alert | verdict | denied | summary
// (engine/types.ts). The stable, machine-readable format of `krsi replay|run --format json`.
import type { Output } from '../../engine/types.ts';

export function formatJson(o: Output): string {
  return JSON.stringify(o) + '\n';
}
