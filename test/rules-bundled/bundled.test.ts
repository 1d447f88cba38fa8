// Every bundled rule test file (rules/tests/*.json) through engine/ruletest/: one node:test per case,
// so `npm test` covers every bundled rule, positives and negatives, and the bundled sample log.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { BUNDLED_TESTS_DIR, RuleCache, formatCaseResult, loadTestFile, runCase, testFilePaths } from '../../engine/ruletest/index.ts';

const cache = new RuleCache();

for (const file of testFilePaths([BUNDLED_TESTS_DIR])) {
  describe(`rules/tests/${basename(file)}`, () => {
    // a bad test file fails here with every located problem
    const tf = loadTestFile(file);
    for (const c of tf.cases) {
      test(c.name, async () => {
        const r = await runCase(c, cache);
        assert.ok(r.ok, `\n${formatCaseResult(r)}`);
      });
    }
  });
}
