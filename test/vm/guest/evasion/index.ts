// The areas of the evasion VM run (test/vm/guest/evasion-cases.ts), in the order they run. Each is
// `run(dir)`: dir is <results>/<area>, prepared on the host by test/vm/evasion/<area>.ts (helpers, modules);
// it returns what it observed (JSON). Each area loads and unloads what it needs itself.
export type AreaRun = (dir: string) => Promise<Record<string, unknown>>;

import { run as modules } from './modules.ts';

export const AREAS: Record<string, AreaRun> = { modules };
