// Rule tests (`krsi test`, like `tetra policytest`): a test file names rules, gives events (inline or a
// log) and the alerts / verdicts / denials it expects; each case is replayed in-process through the
// engine and the outputs are compared with the expectations. The format is documented in
// rules/tests/README.md. Stages: read and validate (parse.ts, with reader.ts, case-events.ts and
// expect.ts: every problem located by file:line:column and JSON pointer, all collected) -> run (runner.ts,
// one Engine per case) -> compare (compare.ts) -> format (format.ts).
export {
  RuleTestError, formatTestIssue,
  type CaseResult, type Failure, type FileResult, type Matcher, type OutKind, type RunOptions, type RunResult, type TestCase,
  type TestFile, type TestIssue,
} from './types.ts';
export { BUNDLED_TESTS_DIR, loadTestFile, parseTestFile, testFilePaths } from './parse.ts';
export { RuleCache, runCase, runTestFiles } from './runner.ts';
export { compare } from './compare.ts';
export { describeMatcher, describeOutput, formatCaseResult, relPath } from './format.ts';
