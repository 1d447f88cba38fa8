// krsi check [--rules <dir|file>...] [--format text|json]: load rules through every stage and print
// every issue as `file:line:col: error [rule-id] CODE: message`. Exit 1 on any error, 0 otherwise.
import { readFileSync } from 'node:fs';
import { relative, isAbsolute } from 'node:path';
import type { Command } from 'commander';
import { BUNDLED_RULES_DIR, formatIssue, loadRuleSourcesFromPaths, type RuleIssue } from '../../engine/rules/load.ts';
import { visible } from '../../lib/visible.ts';

function display(file: string): string {
  if (!isAbsolute(file)) return file;
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

const SNIPPET_HALF = 80;

/** the source line of an issue (up to 80 characters either side of its column) and a caret under it */
function snippet(i: RuleIssue, files: Map<string, string[] | null>): string[] {
  if (!files.has(i.file)) {
    try {
      files.set(i.file, readFileSync(i.file, 'utf8').split('\n'));
    } catch {
      files.set(i.file, null);
    }
  }
  const whole = files.get(i.file)?.[i.line - 1];
  if (whole === undefined) return [];
  // a window around the column: a one-line file of megabytes would print itself once per issue
  const from = Math.max(0, i.column - 1 - SNIPPET_HALF);
  const line = (from > 0 ? '…' : '') + whole.replace(/\r$/, '').slice(from, i.column - 1 + SNIPPET_HALF) + (whole.length > i.column - 1 + SNIPPET_HALF ? '…' : '');
  const num = String(i.line);
  const pad = ' '.repeat(num.length);
  const lead = ((from > 0 ? '…' : '') + whole.slice(from, i.column - 1)).replace(/[^\t]/g, ' ');
  return [`  ${num} | ${line}`, `  ${pad} | ${lead}^`];
}

export async function runCheck(opts: { rules?: string[]; format?: string; snippet?: boolean }, out: (s: string) => void): Promise<number> {
  const paths = opts.rules && opts.rules.length ? opts.rules : [BUNDLED_RULES_DIR];
  const r = await loadRuleSourcesFromPaths(paths);
  const cwd = process.cwd() + '/';
  const issues: RuleIssue[] = r.issues.map((i) => ({ ...i, file: display(i.file), message: i.message.split(cwd).join('') }));
  const errors = issues.filter((i) => i.severity === 'error').length;
  const warnings = issues.length - errors;
  if (opts.format === 'json') {
    for (const i of issues) out(JSON.stringify(i));
  } else {
    const files = new Map<string, string[] | null>();
    // file names and quoted values come from the files: control and bidi characters shown as escapes
    for (const i of issues) {
      out(visible(formatIssue(i)));
      if (opts.snippet) for (const l of snippet(i, files)) out(visible(l));
    }
    const rules = r.set ? `${r.set.rules.length} rule(s), ${Object.keys(r.set.lists).length} list(s) loaded` : 'nothing loaded';
    out(visible(`${errors} error(s), ${warnings} warning(s): ${rules} from ${paths.map(display).join(', ')}`));
  }
  return errors > 0 ? 1 : 0;
}

export function register(program: Command): void {
  program
    .command('check')
    .description('validate rule files: print every error with file:line:column and rule id (exit 1 on any error)')
    .argument('[paths...]', 'rule files or directories (same as --rules)')
    .option('--rules <path...>', 'rule files or directories of *.json (default: the bundled rules/)')
    .option('--format <format>', 'text | json (one issue per line)', 'text')
    .option('--snippet', 'text format: show the source line and a caret under each issue')
    .action(async (paths: string[], opts: { rules?: string[]; format: string; snippet?: boolean }) => {
      opts.rules = [...(opts.rules ?? []), ...paths];
      if (opts.format !== 'text' && opts.format !== 'json') {
        console.error(`krsi check: --format must be text or json, not ${JSON.stringify(opts.format)}`);
        process.exit(2);
      }
      const code = await runCheck(opts, (s) => process.stdout.write(s + '\n'));
      process.exitCode = code;
    });
}
