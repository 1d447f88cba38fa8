// The staged rule loader (like Falco's): read -> validate (schema, semantics) -> compile -> index.
// Every issue is collected and located; a rule set with any error loads nothing.
//   loadRuleSources(sources) -> { ok, set?, issues }     (never throws for bad rules)
//   loadRuleDirs(paths)      -> CompiledRuleSet          (throws RuleLoadError)
import { childLogger } from '../../lib/logger.ts';
import { packagePath } from '../../lib/package.ts';
import { IssueCollector, RuleLoadError, formatIssue, hasErrors, type RuleIssue } from './issues.ts';
import { locator, readDocuments, readSources, type RuleSource } from './read.ts';
import { collectLists, validateSchema, validateSemantics } from './validate.ts';
import { buildRuleSet } from './ruleset.ts';
import { messageFor } from './messages.ts';
import type { CompiledRuleSet } from './types.ts';

export { RuleLoadError, formatIssue, type RuleIssue, type RuleSource };

/** absolute path of the bundled rules/ directory */
export const BUNDLED_RULES_DIR = packagePath('rules/');

const log = childLogger('rules');

export interface LoadResult {
  ok: boolean;
  set?: CompiledRuleSet;
  issues: RuleIssue[];
}

function sortIssues(issues: RuleIssue[], files: string[]): RuleIssue[] {
  const order = new Map(files.map((f, i) => [f, i]));
  return issues
    .map((i, n) => ({ i, n }))
    .sort((a, b) => (order.get(a.i.file) ?? -1) - (order.get(b.i.file) ?? -1) || a.i.line - b.i.line || a.i.column - b.i.column || a.n - b.n)
    .map((x) => x.i);
}

export function loadRuleSources(sources: RuleSource[], extra: RuleIssue[] = []): LoadResult {
  // read
  const parse = new IssueCollector(() => ({ line: 1, column: 1 }));
  const docs = readDocuments(sources, parse);
  const locate = locator(docs);
  const issues = new IssueCollector(locate);
  issues.issues.push(...extra, ...parse.issues);
  const where = (file: string, pointer: string, key?: boolean) => {
    const at = locate({ file, pointer, key });
    return `${file}:${at.line}:${at.column}`;
  };
  for (const d of docs) {
    for (const k of d.duplicates ?? []) {
      const { rule } = locate({ file: d.file, pointer: k.pointer });
      issues.issues.push({ ...messageFor('DUPLICATE_KEY', { key: k.key }), code: 'DUPLICATE_KEY', file: d.file, line: k.line, column: k.column, pointer: k.pointer, rule });
    }
  }
  // validate
  validateSchema(docs, issues);
  const lists = collectLists(docs, issues, where);
  validateSemantics(docs, issues, lists, where);
  const sorted = sortIssues(issues.issues, sources.map((s) => s.file));
  if (hasErrors(sorted)) return { ok: false, issues: sorted };
  // compile + index
  try {
    return { ok: true, set: buildRuleSet(docs, lists, locate), issues: sorted };
  } catch (e) {
    // validation should make this unreachable; never load a half-compiled set
    const err: RuleIssue = { ...messageFor('INTERNAL', { reason: (e as Error).message }), code: 'INTERNAL', file: sources[0]?.file ?? '', line: 1, column: 1, pointer: '' };
    return { ok: false, issues: [...sorted, err] };
  }
}

/** read files and directories (every *.json in a directory, schema.json excluded) and load them */
export async function loadRuleSourcesFromPaths(paths: string[]): Promise<LoadResult> {
  const extra: RuleIssue[] = [];
  const sources = await readSources(paths, (file, reason, dirEmpty) => {
    const code = dirEmpty ? 'NO_RULE_FILES' : 'READ_ERROR';
    extra.push({ ...messageFor(code, { dir: file, reason }), code, file, line: 1, column: 1, pointer: '' });
  });
  return loadRuleSources(sources, extra);
}

export async function loadRuleDirs(paths: string[] = [BUNDLED_RULES_DIR]): Promise<CompiledRuleSet> {
  const r = await loadRuleSourcesFromPaths(paths);
  if (!r.ok || !r.set) throw new RuleLoadError(r.issues);
  for (const i of r.issues) log.warn({ code: i.code, file: i.file, line: i.line }, formatIssue(i));
  return r.set;
}
