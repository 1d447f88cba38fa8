// runs every test/**/*.test.ts file with node's test runner (tsx loads TypeScript), after `npm run build`
// (incremental), so that tests spawning bin/krsi.js, which runs dist/, run the current sources.
// usage: node test/run.mjs [substring filter ...]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('.', import.meta.url).pathname;
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(p);
  }
})(root);
const build = spawnSync(process.execPath, [join(root, '..', 'bin', 'build.mjs')], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const filters = process.argv.slice(2);
const chosen = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
// --test-force-exit (node >= 20.14): a test file whose handles outlive its tests ends with its results instead of
// hanging the run (tests still detach what they load; this is the backstop when one fails midway)
const [major, minor] = process.versions.node.split('.').map(Number);
const forceExit = major > 20 || (major === 20 && minor >= 14) ? ['--test-force-exit'] : [];
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...forceExit, ...chosen], { stdio: 'inherit' });
process.exit(r.status ?? 1);
