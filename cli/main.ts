// krsi command line. Each command lives in cli/commands/<name>.ts and exports register(program).
// Exit codes: 0 ok; 1 rule/log errors or failed tests; 2 usage; 3 missing prerequisite (root, libbpf, BPF LSM).
import { Command } from 'commander';
import { formatTrace, pipelineTrace } from '../lib/rx/trace.ts';
import * as replay from './commands/replay.ts';
import * as check from './commands/check.ts';
import * as test from './commands/test.ts';
import * as log from './commands/log.ts';
import * as record from './commands/record.ts';
import * as run from './commands/run.ts';
import * as status from './commands/status.ts';
import * as verdicts from './commands/verdicts.ts';

// KRSI_PIPELINE_TRACE=1: on exit, the pipeline stages the command ran and what each passed on (stderr)
if (process.env.KRSI_PIPELINE_TRACE) {
  process.on('exit', () => {
    const t = pipelineTrace();
    if (t.length) process.stderr.write(`krsi: pipeline: ${formatTrace(t)}\n`);
  });
}

const program = new Command('krsi')
  .description('KRSI runtime security: BPF signals, JSON correlation rules, BPF-LSM enforcement')
  .version('0.1.0')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

for (const cmd of [replay, check, test, log, record, run, status, verdicts]) cmd.register(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // an error a command did not handle that says its exit code (a refused state path: 3): one line, that code
  const code = (e as { exitCode?: unknown }).exitCode;
  if (!(e instanceof Error) || typeof code !== 'number') throw e;
  process.stderr.write(`krsi: ${e.message}\n`);
  process.exit(code);
}
