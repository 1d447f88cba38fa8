// enforcers/programs.ts on a host whose kernel refuses BPF LSM programs (this CI machine): loading
// enforcement fails loudly with EnforcementUnavailable and pins nothing. In a BPF-LSM kernel the same
// code is exercised by test/vm/enforce.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { needLiveBpf } from '../helpers/prereq.ts';
import { supported } from '../../bpf/support.ts';
import { loadEnforcement, EnforcementUnavailable, lsmUnavailable } from '../../enforcers/programs.ts';
import { ENFORCE_PIN_DIR, MAP_PINS } from '../../enforcers/maps.ts';

const pins = () => (existsSync(ENFORCE_PIN_DIR) ? readdirSync(ENFORCE_PIN_DIR).sort() : []);

test('without a BPF-LSM kernel, loadEnforcement refuses loudly and pins nothing', { skip: needLiveBpf() ?? (supported().lsmLoads ? 'this kernel loads BPF LSM programs (covered by test/vm/enforce.test.ts)' : undefined) }, async () => {
  const before = pins();
  await assert.rejects(loadEnforcement({ selfPid: process.pid }), (e: unknown) => {
    assert.ok(e instanceof EnforcementUnavailable, String(e));
    assert.match((e as Error).message, /enforcement unavailable: .*(LSM|lsm)/);
    assert.equal((e as EnforcementUnavailable).exitCode, 3);
    return true;
  });
  assert.deepEqual(pins(), before);
  if (!before.includes('config')) assert.equal(existsSync(MAP_PINS.config), false);
});

test('lsmUnavailable names the fix when bpf is missing from the active LSMs', { skip: needLiveBpf() }, () => {
  const why = lsmUnavailable();
  const active = supported().lsmActive;
  if (active) assert.equal(why, undefined);
  else assert.match(why!, /lsm=.*bpf/);
});
