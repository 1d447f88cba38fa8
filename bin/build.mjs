// npm run build (and npm's prepare, so `npm ci` and `npm pack` run it): the TypeScript sources compiled into
// dist/ (tsc, incremental: a no-op when nothing changed) and the CO-RE BPF objects into bpf/build/ (clang).
// `krsi` runs only dist/: nothing compiles TypeScript, reads a tsconfig or writes a cache at run time.
//   node bin/build.mjs          without clang the BPF objects are skipped with a warning
//   node bin/build.mjs --pack   they are required (a package must carry them: its hosts need no clang);
//                                   implied under `npm pack` / `npm publish`
//   node bin/build.mjs --force  runs tsc even when dist/ looks current
import { spawnSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { staleDist } from './stale.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const pack = process.argv.includes('--pack') || ['pack', 'publish'].includes(process.env.npm_command ?? '');
// bin/stale.mjs compares this stamp with the sources; dated when the build started, so an edit made while tsc
// ran still counts as newer than dist/
const STAMP = `${root}dist/.built`;
const started = new Date();

function fail(msg) {
  process.stderr.write(`krsi build: ${msg}\n`);
  process.exit(1);
}

function run(args, env = {}) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) fail(`node ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// tsc only when a source (or a tsconfig) is newer than the last build: starting tsc costs ~2 CPU-s even when
// its incremental build has nothing to do, and npm test, npm pack and test/helpers/krsi.ts all build
if (staleDist(root) || process.argv.includes('--force')) {
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    fail('typescript not installed: run npm ci (it is a devDependency)');
  }
  run([tsc, '-p', 'tsconfig.build.json']);
  mkdirSync(`${root}dist`, { recursive: true });
  writeFileSync(STAMP, '');
  utimesSync(STAMP, started, started);
}

if (have('clang')) run(['dist/bpf/build.js'], { KRSI_LOG_LEVEL: 'warn' });
else if (pack) fail('the package needs the BPF objects, and they need clang (apt-get install clang llvm libbpf-dev)');
else process.stderr.write('krsi build: BPF objects not built (no clang): replay, check and test work; live commands build them on first use\n');
