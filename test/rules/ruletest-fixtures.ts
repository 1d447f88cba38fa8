// Shared by the rule-test tests (test/rules-bundled/ruletest.test.ts, test/rules/hostile-tests.test.ts): a
// process that deletes its own executable, and the located issues a test file's text gives.
import assert from 'node:assert/strict';
import { RuleTestError, parseTestFile, type TestIssue } from '../../engine/ruletest/index.ts';

/** a process template: an implant that deletes its own executable */
export const implant = { pid: 4121, ppid: 1, uid: 0, comm: 'kworkerd', exe: { path: '/tmp/.x/kworkerd', dev: 38, ino: 70200 } };
/** its unlink of itself (self-deleting-executable fires on it) */
export const selfUnlink = { ts: '1s', type: 'unlink', process: 'implant', path: '/tmp/.x/kworkerd', target: { dev: 38, ino: 70200, nlink: 0 } };

/** the issues parseTestFile reports for `text`; fails when it parses */
export function issues(text: string): TestIssue[] {
  try {
    parseTestFile('t.json', text);
  } catch (e) {
    if (e instanceof RuleTestError) return e.issues;
    throw e;
  }
  return assert.fail('expected a RuleTestError');
}
