// Runs the real CLI for tests: bin/krsi.js (dist/, which npm test builds first). When dist/ is older
// than the sources (someone editing this checkout while tests run), the launcher refuses with exit 3;
// then the same CLI runs from the sources (cli/main.ts through tsx) instead of failing the test.
import { spawn, spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const KRSI = fileURLToPath(new URL('../../bin/krsi.js', import.meta.url));
const CLI_TS = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));
const STALE = /^krsi: dist\/ is (older than|not built)/;

/** krsi ARGS, synchronously (a 60 s timeout unless given) */
export function krsiSync(args: string[], o: SpawnSyncOptions = {}): SpawnSyncReturns<string> {
  const opts = { encoding: 'utf8' as const, timeout: 60_000, maxBuffer: 1 << 28, ...o };
  const r = spawnSync(process.execPath, [KRSI, ...args], opts) as SpawnSyncReturns<string>;
  if (r.status === 3 && STALE.test(r.stderr)) return spawnSync(process.execPath, ['--import', 'tsx', CLI_TS, ...args], opts) as SpawnSyncReturns<string>;
  return r;
}

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(argv: string[], timeoutMs: number): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout = (stdout + d).slice(-(1 << 20))));
    child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-(1 << 16))));
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** krsi ARGS in a child process that is killed (SIGKILL) after timeoutMs */
export async function krsiAsync(args: string[], timeoutMs = 60_000): Promise<Ran> {
  const r = await run([KRSI, ...args], timeoutMs);
  if (r.code === 3 && STALE.test(r.stderr)) return run(['--import', 'tsx', CLI_TS, ...args], timeoutMs);
  return r;
}
