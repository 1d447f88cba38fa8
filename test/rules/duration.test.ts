import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, DurationError } from '../../lib/duration.ts';

test('parseDuration: units and integer nanoseconds', () => {
  assert.equal(parseDuration('500ms'), 500e6);
  assert.equal(parseDuration('10s'), 10e9);
  assert.equal(parseDuration('2m'), 120e9);
  assert.equal(parseDuration('1h'), 3600e9);
  assert.equal(parseDuration('1d'), 86400e9);
  assert.equal(parseDuration('0s'), 0);
  assert.equal(parseDuration(0), 0);
  assert.equal(parseDuration(1234), 1234);
});

test('parseDuration: everything else is an error naming the input', () => {
  for (const bad of ['10', '1.5s', '10 s', 's', '', '-1s', '10us', '1w', 'ten seconds', -1, 1.5, NaN, Infinity, '99999999999999d']) {
    assert.throws(() => parseDuration(bad as string), (e: unknown) => e instanceof DurationError && e.message.includes(JSON.stringify(bad) ?? ''), String(bad));
  }
});
