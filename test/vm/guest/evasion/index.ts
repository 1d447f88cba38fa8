// The areas of the evasion VM run (test/vm/guest/evasion-cases.ts), in the order they run. Each is
// `run(dir)`: dir is <results>/<area>, prepared on the host by test/vm/evasion/<area>.ts (helpers, modules);
// it returns what it observed (JSON). Each area loads and unloads what it needs itself.
import { run as exec } from './exec.ts';
import { run as memory } from './memory.ts';
import { run as files } from './files.ts';
import { run as modules } from './modules.ts';
import { run as quarantine } from './quarantine.ts';
import { run as workload } from './workload.ts';

export type AreaRun = (dir: string) => Promise<Record<string, unknown>>;

export const AREAS: Record<string, AreaRun> = { exec, memory, files, modules, quarantine, workload };
