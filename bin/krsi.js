#!/usr/bin/env node
// krsi's launcher: runs the JavaScript that `npm run build` compiled from the TypeScript sources into dist/.
// Nothing at run time compiles TypeScript, reads a tsconfig or writes a cache: a root process must not run
// code that others can plant (tsx's /tmp/tsx-0 cache, a tsconfig.json above the working directory).

// first, before anything can delay it: Node opens its inspector (127.0.0.1:9229, code execution inside krsi,
// which is exempt from its own enforcement) on SIGUSR1; a listener of our own replaces that signal handler
process.on('SIGUSR1', () => {});

const { existsSync, readdirSync, statSync } = await import('node:fs');
const { join } = await import('node:path');

// a SIGUSR1 that came during Node's start-up, before the listener, may have opened it: close it unless asked for
const asked = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => a.includes('--inspect'));
const inspector = await import('node:inspector').catch(() => undefined); // a node built without it
if (inspector?.url() && !asked) inspector.close();

const root = new URL('..', import.meta.url);

// in a checkout (the sources are here), dist/ must have been built from them: say so instead of running old code
if (existsSync(new URL('engine/cli.ts', root))) {
  const mtime = (p) => {
    try {
      return statSync(p).mtimeMs;
    } catch {
      return -1;
    }
  };
  const built = mtime(new URL('dist/.built', root));
  let newest = { t: -1, path: '' };
  for (const dir of ['engine', 'signals', 'enforcers', 'bpf']) {
    for (const e of readdirSync(new URL(`${dir}/`, root), { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith('.ts')) continue;
      const path = join(e.parentPath ?? e.path, e.name);
      const t = mtime(path);
      if (t > newest.t) newest = { t, path };
    }
  }
  if (built < 0 || newest.t > built) {
    const why = built < 0 ? 'dist/ is not built' : `dist/ is older than ${newest.path}`;
    process.stderr.write(`krsi: ${why}: run npm run build\n`);
    process.exit(3);
  }
}

await import('../dist/engine/cli.js');
