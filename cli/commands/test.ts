// krsi test [FILES...]: run rule test files (default: the bundled rules/tests/*.json).
// Exit codes: 0 every case passed; 1 a case failed, a test file is bad, or its rules do not load.
import type { Command } from 'commander';
import { BUNDLED_TESTS_DIR, formatCaseResult, formatTestIssue, relPath, runTestFiles, type CaseResult } from '../../engine/ruletest/index.ts';
import { visible } from '../../lib/visible.ts';

/** text output carries event-derived strings (alert messages, paths): control and bidi characters as escapes */
const show = (s: string) => s.split('\n').map(visible).join('\n');

interface Opts {
  rules?: string[];
  grep?: string[];
  format: string;
  verbose?: boolean;
}

function collect(v: string, prev: string[] | undefined): string[] {
  return [...(prev ?? []), v];
}

export function register(program: Command): void {
  program
    .command('test')
    .description('run rule tests: events in, expected alerts / verdicts / denials out (format: rules/tests/README.md)')
    .argument('[files...]', 'test files or directories of *.json', [])
    .option('--rules <path>', 'rule file/dir to test instead of each file\'s own "rules" (repeatable)', collect)
    .option('-g, --grep <text>', 'only cases whose name contains the text (repeatable)', collect)
    .option('--format <fmt>', 'text | json (one JSON object per case)', 'text')
    .option('-v, --verbose', 'list every output of every case')
    .addHelpText('after', '\nExit codes: 0 all passed; 1 a case failed or a test file is bad; 2 usage.')
    .action(async (files: string[], o: Opts) => {
      if (o.format !== 'text' && o.format !== 'json') {
        console.error(`krsi test: --format must be text or json, got ${JSON.stringify(o.format)}`);
        process.exit(2);
      }
      // `krsi test | head`: a closed pipe ends the run quietly
      process.stdout.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
        throw e;
      });
      const json = o.format === 'json';
      let current = '';
      const onCase = (r: CaseResult) => {
        if (json) {
          const { outputs, ...rest } = r;
          process.stdout.write(JSON.stringify({ kind: 'case', ...rest, file: relPath(r.file), ...(o.verbose ? { outputs } : {}) }) + '\n');
          return;
        }
        if (r.file !== current) process.stdout.write(`${show(relPath((current = r.file)))}\n`);
        process.stdout.write(show(formatCaseResult(r, o.verbose)) + '\n');
      };
      const res = await runTestFiles(files.length ? files : [BUNDLED_TESTS_DIR], { rules: o.rules, grep: o.grep, onCase });
      for (const f of res.files) {
        if (!f.issues) continue;
        if (json) process.stdout.write(JSON.stringify({ kind: 'file-error', file: relPath(f.file), issues: f.issues }) + '\n');
        else process.stdout.write(`${show(relPath(f.file))}\n${f.issues.map((i) => '  ' + show(formatTestIssue({ ...i, file: relPath(i.file) }))).join('\n')}\n`);
      }
      const summary = `${res.files.length} file${res.files.length === 1 ? '' : 's'}, ${res.passed + res.failed} cases: ${res.passed} passed, ${res.failed} failed${res.broken ? `, ${res.broken} bad file${res.broken === 1 ? '' : 's'}` : ''}`;
      if (json) process.stdout.write(JSON.stringify({ kind: 'summary', files: res.files.length, passed: res.passed, failed: res.failed, bad_files: res.broken }) + '\n');
      else process.stdout.write(`${summary}\n`);
      process.exitCode = res.failed || res.broken || res.passed + res.failed === 0 ? 1 : 0;
    });
}
