// Running rule tests: each case replayed in-process through a fresh Engine (rule sets compiled once
// and shared), its outputs compared with its expectations.
import { resolve } from 'node:path';
import type { Output } from '../types.ts';
import type { CompiledRuleSet } from '../rules/types.ts';
import { RuleLoadError, formatIssue, loadRuleDirs } from '../rules/load.ts';
import { selectRules } from '../rules/select.ts';
import { Engine } from '../engine.ts';
import { readEvents } from '../eventlog/index.ts';
import { compare } from './compare.ts';
import { loadTestFile, testFilePaths } from './parse.ts';
import { RuleTestError, type CaseResult, type FileResult, type RunOptions, type RunResult, type TestCase, type TestFile } from './types.ts';

/** compiled rule sets, by their source paths, shared between cases */
export class RuleCache {
  private sets = new Map<string, Promise<CompiledRuleSet>>();
  get(paths: string[]): Promise<CompiledRuleSet> {
    const k = paths.join('\0');
    let s = this.sets.get(k);
    if (!s) this.sets.set(k, (s = loadRuleDirs(paths)));
    return s;
  }
}

/** replays a case's events through a fresh engine and compares the outputs with its expectations */
export async function runCase(c: TestCase, cache = new RuleCache()): Promise<CaseResult> {
  const res: CaseResult = { file: c.file, name: c.name, at: c.at, ok: false, failures: [], outputs: [] };
  let set: CompiledRuleSet;
  try {
    set = await cache.get(c.rules);
    if (c.only) set = selectRules(set, c.only);
  } catch (e) {
    res.error = e instanceof RuleLoadError ? `rules do not load:\n${e.issues.map(formatIssue).join('\n')}` : (e as Error).message;
    return res;
  }
  const engine = new Engine({ rules: set, mode: c.mode });
  const emit = (o: Output) => {
    if (o.kind !== 'summary') res.outputs.push(o);
  };
  try {
    if (c.events) for (const ev of c.events) engine.push({ ...ev }, emit);
    else for await (const batch of readEvents(c.log!)) for (const ev of batch) engine.push(ev, emit);
    engine.finish(emit);
  } catch (e) {
    res.error = (e as Error).message;
    return res;
  }
  res.failures = compare(c.expect, res.outputs);
  res.ok = res.failures.length === 0;
  return res;
}

/** every case of the test files (directories: their *.json), in order; a file that cannot be read or
 *  parsed counts as broken and its cases do not run */
export async function runTestFiles(paths: string[], o: RunOptions = {}): Promise<RunResult> {
  const cache = new RuleCache();
  const out: RunResult = { files: [], passed: 0, failed: 0, broken: 0 };
  for (const path of testFilePaths(paths)) {
    const fr: FileResult = { file: path, cases: [] };
    out.files.push(fr);
    let tf: TestFile;
    try {
      tf = loadTestFile(path);
    } catch (e) {
      if (!(e instanceof RuleTestError)) throw e;
      fr.issues = e.issues;
      out.broken++;
      continue;
    }
    for (const c of tf.cases) {
      if (o.grep && !o.grep.some((g) => c.name.includes(g))) continue;
      const r = await runCase(o.rules ? { ...c, rules: o.rules.map((p) => resolve(p)) } : c, cache);
      fr.cases.push(r);
      if (r.ok) out.passed++;
      else out.failed++;
      o.onCase?.(r);
    }
  }
  return out;
}
