// bin/krsi.js for tests that spawn the CLI. It runs dist/, so importing this module first rebuilds dist/
// when it is older than the sources: `npm test` has built already, and a test file run by hand
// (node --import tsx --test test/x/y.test.ts) then runs the current sources too.
//   import { KRSI } from '../helpers/krsi.ts'; spawnSync(process.execPath, [KRSI, 'replay', ...])
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { staleDist } from '../../scripts/stale.mjs';

const ROOT = new URL('../../', import.meta.url);
export const KRSI = fileURLToPath(new URL('bin/krsi.js', ROOT));

if (staleDist(ROOT)) {
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('scripts/build.mjs', ROOT))], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
}
