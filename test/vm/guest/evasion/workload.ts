// Issue 11's false-positive guard in enforce mode (runs in the BPF-LSM guest; host side: test/vm/evasion/workload.ts):
// `krsi run --mode enforce` with the bundled rules — so the kernel's own blocks are on: the mprotect counter,
// the module allowlist, the exec deny list — while the ordinary workload of test/live/fixtures/workload.sh runs
// (JVM and node JIT, make, python, git, tar, a package upgraded under a running copy, an allowlisted
// preload). Returns test/helpers/workload.ts's report: the steps' exits, and the alerts, verdicts and denials
// that name the workload's processes (the host asserts there are none).
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { unloadEnforcement } from '../../../../enforcers/programs.ts';
import { runWorkload } from '../../../helpers/workload.ts';

// the compiled CLI (dist/, built on the host before the boot), as test/vm/e2e.test.ts runs it
const CLI = fileURLToPath(new URL('../../../../dist/cli/main.js', import.meta.url));

export async function run(dir: string): Promise<Record<string, unknown>> {
  // the workload, the log and the store on the guest's own tmpfs overlay, not the 9p results share
  const scratch = '/var/tmp/krsi-workload';
  mkdirSync(scratch, { recursive: true });
  try {
    const r = await runWorkload({
      cli: [process.execPath, CLI], mode: 'enforce', dir: scratch,
      // javac compiled JitHot.class on the host (prepare): under TCG javac alone costs tens of seconds
      env: { KRSI_WORKLOAD_CLASSES: dir, KRSI_WORKLOAD_JIT_SECONDS: process.env.KRSI_WORKLOAD_JIT_SECONDS ?? '4' },
      startTimeoutMs: 240_000, workloadTimeoutMs: 400_000, stopTimeoutMs: 120_000,
      progress: (l) => process.stderr.write(`workload: ${l}\n`),
    });
    return { report: r };
  } finally {
    // krsi run leaves its enforcement pinned (it outlives krsi by design): the next area must not inherit it
    unloadEnforcement();
  }
}
